// Package ingest moves messages from the KOHAKU stream into the database.
//
// [Consumer] is the writer's steady state: it pulls from the durable consumer
// "kohaku-writer", which several writers may share, collects batches, has the store write
// each batch in one transaction and acknowledges the batch only after the commit. [Replay]
// reads a period of the stream again through an ordered consumer of its own and writes it
// the same way; natural keys make both idempotent.
//
// Both run batches through a pipeline of two goroutines: one collects and decodes the next
// batch while the calling goroutine writes the previous one (and Consumer acknowledges it).
// A batch has one owner at a time: the collecting goroutine until it hands the batch over,
// the writing one after. While the database is unreachable the writing goroutine keeps its
// batch and retries with capped exponential backoff, Consumer telling JetStream that the
// batch is still being worked on; the collecting goroutine waits with the next batch,
// decoded, and the pull buffer holds at most one more, so a stuck writer holds three
// batches at most.
package ingest
