-- The stats webhook (Sora 2025.1 and later) reports connections too: sora_connection learns
-- which feed reported a connection and the webhook's group_id and bundle_id, and takes a
-- connection without multistream, which Sora 2025.2's webhook no longer sends.

ALTER TABLE sora_connection ALTER COLUMN multistream DROP NOT NULL;

ALTER TABLE sora_connection ADD COLUMN IF NOT EXISTS group_id text;
ALTER TABLE sora_connection ADD COLUMN IF NOT EXISTS bundle_id text;
-- Every connection stored before this migration came from the stats exporter.
ALTER TABLE sora_connection ADD COLUMN IF NOT EXISTS feed text NOT NULL DEFAULT 'exporter';
ALTER TABLE sora_connection ALTER COLUMN feed DROP DEFAULT;
DO $$
BEGIN
    ALTER TABLE sora_connection ADD CONSTRAINT sora_connection_feed_check CHECK (feed IN ('exporter', 'webhook'));
EXCEPTION WHEN duplicate_object THEN NULL;
END $$;

-- The exporter's bundle_id was kept in extra; it has a column now.
UPDATE sora_connection
SET bundle_id = extra->>'bundle_id', extra = extra - 'bundle_id'
WHERE jsonb_typeof(extra->'bundle_id') = 'string';

CREATE INDEX IF NOT EXISTS sora_connection_group_id_idx ON sora_connection (group_id) WHERE group_id IS NOT NULL;

COMMENT ON COLUMN sora_connection.multistream IS 'NULL when the reports do not say (the stats webhook of Sora 2025.2 and later)';
COMMENT ON COLUMN sora_connection.feed IS 'exporter (stats exporter, connection.user-agent) or webhook (stats webhook, connection.rtc): what reported the newest message';
COMMENT ON COLUMN sora_connection.group_id IS 'the stats webhook''s group_id';
COMMENT ON COLUMN sora_connection.bundle_id IS 'Sora''s bundle_id (connections sharing a bundle), when the report has one';
COMMENT ON TABLE sora_connection IS 'One row per Sora connection: the envelope fields of its connection.user-agent (stats exporter) and connection.rtc (stats webhook) messages, first and last message time; extra holds the envelope fields without a column.';
