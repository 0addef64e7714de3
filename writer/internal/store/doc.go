// Package store writes batches of stream messages into PostgreSQL, exactly once.
//
// [Store.Write] stores a batch in one transaction: the rows of every table by binary COPY,
// the sora_connection rows by upsert, and in kohaku_dead_letter the messages that can never
// be stored and the stats elements that normalize set apart, next to the rest of their
// message. Its caller acknowledges the messages only after Write returned, so a
// crash before the commit loses nothing: JetStream delivers the messages again.
//
// Every row has a natural key, so a message stored twice (a redelivery, a replay, a retried
// request) must not add rows. The common case pays nothing for that: rows are copied
// straight into their tables. A report that the batch holds twice is decided in Go; a
// report that this Store stored recently is merged on its own, through a temporary table
// and INSERT ... ON CONFLICT DO NOTHING, while the rest of its batch is copied; only when
// the database reports a unique violation that nothing foresaw (a restarted writer's
// redelivery, a replay) is the whole batch redone through the merge. A row left
// out so is compared, column by column, with the row that holds its key: the same content
// is a duplicate; different content (two reports within one microsecond, which is what
// timestamptz keeps) is a conflict, and the incoming element is kept in kohaku_dead_letter
// with reason "conflict" and counted, never dropped without a trace.
//
// Errors fall in three kinds, told apart by [Transient] and the SQLSTATE class: a failure of
// the database (retry the same batch later), data the database rejects (find the messages
// responsible by bisecting the batch, dead-letter them, store the rest), and anything else,
// such as a missing table (retry later too: an operator has to act, and no message may be
// lost meanwhile).
package store
