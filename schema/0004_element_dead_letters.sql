-- kohaku_dead_letter also keeps single stats elements, while the rest of their report is
-- stored: an element that PostgreSQL cannot store (normalization sets it apart: a U+0000,
-- a number beyond numeric, an id too long for an index key, not an object), and a row whose
-- natural key already held different content (reason 'conflict'). Such a row names its
-- element's index in the report's stats array and its report's connection_id, and body
-- holds the element alone; a row for a whole message has element NULL, like every row from
-- before this migration.
--
-- The key becomes (stream_seq, element): a message, and each element of it, is kept once
-- however often it is delivered or replayed, since the writer inserts with ON CONFLICT DO
-- NOTHING. Two partial unique indexes make it, as NULLs are distinct in a plain one.

ALTER TABLE kohaku_dead_letter ADD COLUMN IF NOT EXISTS element integer;
ALTER TABLE kohaku_dead_letter ADD COLUMN IF NOT EXISTS connection_id text;
-- The writer always names the reason; the default covers rows from before, and any that
-- another tool adds.
ALTER TABLE kohaku_dead_letter ADD COLUMN IF NOT EXISTS reason text NOT NULL DEFAULT 'decode';
UPDATE kohaku_dead_letter SET reason = 'database'
WHERE element IS NULL AND reason = 'decode' AND error LIKE 'rejected by the database:%';

ALTER TABLE kohaku_dead_letter DROP CONSTRAINT IF EXISTS kohaku_dead_letter_stream_seq_key;
CREATE UNIQUE INDEX IF NOT EXISTS kohaku_dead_letter_message_key ON kohaku_dead_letter (stream_seq) WHERE element IS NULL;
CREATE UNIQUE INDEX IF NOT EXISTS kohaku_dead_letter_element_key ON kohaku_dead_letter (stream_seq, element) WHERE element IS NOT NULL;
CREATE INDEX IF NOT EXISTS kohaku_dead_letter_connection_id_idx ON kohaku_dead_letter (connection_id) WHERE connection_id IS NOT NULL;

COMMENT ON TABLE kohaku_dead_letter IS 'What the writer could never store, kept with its stream sequence, subject, headers and error: a whole message (element NULL) that cannot be decoded or that the database refused, or one stats element of a stored report (element its index in stats, body the element alone).';
COMMENT ON COLUMN kohaku_dead_letter.element IS 'index of the element in the report''s stats array; NULL when body is the whole message';
COMMENT ON COLUMN kohaku_dead_letter.connection_id IS 'the report''s connection_id, for an element of a connection''s report';
COMMENT ON COLUMN kohaku_dead_letter.reason IS 'decode (the message cannot be decoded), database (the database refused the message), nul (U+0000 in a string), number (beyond numeric), long_id (an id longer than an index key may be), not_object, or conflict (its natural key already held different content)';
