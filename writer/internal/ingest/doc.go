// Package ingest moves messages from the KOHAKU stream into the database.
//
// [Consumer] is the writer's steady state: it pulls from the durable consumer
// "kohaku-writer", which several writers may share, collects batches, has the store write
// each batch in one transaction and acknowledges the batch only after the commit. [Replay]
// reads a period of the stream again through an ordered consumer of its own and writes it
// the same way; natural keys make both idempotent.
//
// One goroutine owns a batch from collection to acknowledgement. While the database is
// unreachable it keeps the batch, fetches nothing more, retries with capped exponential
// backoff and tells JetStream the batch is still being worked on.
package ingest
