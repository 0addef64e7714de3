// Package ingest moves messages from the KOHAKU stream into the database.
//
// [Consumer] is the writer's steady state: it pulls from the durable consumer
// "kohaku-writer", which several writers may share, collects batches, has the store write
// each batch in one transaction and acknowledges the batch only after the commit. [Replay]
// reads a period of the stream again through an ordered consumer of its own and writes it
// the same way; natural keys make both idempotent.
//
// Both run batches through a pipeline: one goroutine collects and decodes the next batch
// while writing goroutines write the previous ones (and Consumer acknowledges each after
// its own commit): one for Replay, KOHAKU_WRITE_CONNECTIONS (Options.WriteConnections) for
// Consumer, each batch in its own transaction on its own connection of the pool. Batches
// written at once may commit in any order, which natural keys make harmless; a deadlock
// between two of them is a transient error, and the batch is retried. A batch has one
// owner at a time: the collecting goroutine until it hands the batch over, a writing one
// after. A batch is bounded in messages, in body bytes and in rows (Options); a message
// beyond the bytes or the rows bound alone is a batch of its own. The collector decodes
// while it collects, never more than the rows bound leaves room for, so that a batch's
// bounds are also the memory it takes. While the database is unreachable each writing
// goroutine keeps its batch and retries with capped exponential backoff, Consumer telling
// JetStream that the batch is still being worked on; the collecting goroutine waits with
// the next batch, decoded, and with at most one message pulled for the batch after it; the
// pull buffer holds at most a batch's bytes (or the largest message). So a writer with N
// writing goroutines holds at most N + 2 batches and the pull buffer: the memory ceiling
// that README's "Operations" states.
package ingest
