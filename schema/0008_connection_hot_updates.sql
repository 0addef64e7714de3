-- Every report moves its connection's last_seen. While last_seen was indexed, each of those
-- updates added an entry to every index of sora_connection, five of them: PostgreSQL
-- updates a row in place ("HOT", heap-only tuple) only when no indexed column changes and
-- the row's page has room for the new version. The indexes now key on last_seen_hour, the
-- hour that last_seen falls in, which changes once an hour; and each page is filled to half
-- when rows are added, keeping the other half for new versions (a batch can update every
-- connection of a page before the old versions can be pruned). Half the updates' time in
-- the writer's benchmark, and no index growth between vacuums.
--
-- Queries for the connections seen in a period go through kohaku_connections_seen, which
-- finds them by the hour as well as by the exact times; the hours are UTC hours (the
-- origin has its zone), so that no session's TimeZone moves them.

ALTER TABLE sora_connection SET (fillfactor = 50);

-- Adding a stored generated column rewrites the table, with the new fillfactor.
ALTER TABLE sora_connection ADD COLUMN IF NOT EXISTS last_seen_hour timestamptz
    GENERATED ALWAYS AS (date_bin('1 hour', last_seen, '2000-01-03 00:00:00+00')) STORED;

CREATE INDEX IF NOT EXISTS sora_connection_last_seen_hour_idx ON sora_connection (last_seen_hour);
CREATE INDEX IF NOT EXISTS sora_connection_channel_id_hour_idx ON sora_connection (channel_id, last_seen_hour);
DROP INDEX IF EXISTS sora_connection_last_seen_idx;
DROP INDEX IF EXISTS sora_connection_channel_id_idx;

-- A plain SQL function of one SELECT, so that PostgreSQL inlines it into the calling query,
-- whose other conditions (a channel) then use the indexes too.
CREATE OR REPLACE FUNCTION kohaku_connections_seen(since timestamptz, until timestamptz)
RETURNS SETOF sora_connection
LANGUAGE sql STABLE
AS $$
    SELECT * FROM sora_connection
    WHERE last_seen_hour >= date_bin('1 hour', since, '2000-01-03 00:00:00+00')
      AND last_seen >= since AND first_seen <= until
$$;

COMMENT ON COLUMN sora_connection.last_seen_hour IS 'the UTC hour that last_seen falls in: what the indexes key on, so that a newer report of the connection updates its row in place';
COMMENT ON FUNCTION kohaku_connections_seen(timestamptz, timestamptz) IS 'the connections with a report from since to until: last_seen >= since and first_seen <= until, found through the last_seen_hour indexes';
