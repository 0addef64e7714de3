-- kohaku_dead_letter keeps every stream message that the writer could never store (its body
-- cannot be decoded), with the error, so that it neither blocks the stream nor disappears.
--
-- stream_seq is unique: a poison message that JetStream redelivers, or that a replay reads
-- again, has the same stream sequence, and the writer inserts with ON CONFLICT DO NOTHING,
-- so it is kept once. (Sequences restart only when the stream itself is deleted and created
-- anew; rows from before that are then best cleared by the operator.)
CREATE TABLE IF NOT EXISTS kohaku_dead_letter (
    id         bigserial   PRIMARY KEY,
    stream_seq bigint      NOT NULL,
    subject    text        NOT NULL,
    headers    jsonb       NOT NULL DEFAULT '{}'::jsonb,
    body       bytea       NOT NULL,
    error      text        NOT NULL,
    time       timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT kohaku_dead_letter_stream_seq_key UNIQUE (stream_seq)
);

-- Operators look at the newest dead letters first.
CREATE INDEX IF NOT EXISTS kohaku_dead_letter_time_idx ON kohaku_dead_letter (time DESC);
