package ingest

import (
	"context"

	"github.com/nats-io/nats.go/jetstream"

	"kohaku/writer/internal/store"
)

// decodedBatch is a batch of messages pulled from the iterator, decoded, on its way to the
// database: the messages to acknowledge once it is written and what they decoded to.
type decodedBatch struct {
	msgs  []jetstream.Msg
	items []store.Message // msgs decoded, in the same order
	again int             // how many of msgs are redeliveries
	bytes int             // of the msgs' bodies
	rows  int             // in items, all tables together
}

// pipeline collects and decodes batches within b from it in one goroutine and hands each,
// in order, to write in the calling goroutine: the next batch is pulled and normalized
// while the database writes the last one, and a batch has one owner at a time. It holds at
// most the batch being written, a decoded one waiting and the collector's held message
// (besides the iterator's pull buffer): the memory ceiling of README's "Operations". When
// collecting ends (ctx ended, accept saw the last message, the iterator failed) the batch
// collected so far is still written; pipeline then returns the collector's error. When
// write fails, pipeline stops collecting, drops the batch it may hold (unacknowledged, so
// it comes again) and returns write's error.
func pipeline(ctx context.Context, it jetstream.MessagesContext, b bounds, accept acceptFunc, write func(*decodedBatch) error) error {
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	batches := make(chan *decodedBatch) // unbuffered: at most one batch waits, decoded
	var collectErr error
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer close(batches)
		c := &collector{it: it, b: b, accept: accept}
		for {
			db, err := c.next(cctx)
			if len(db.msgs) > 0 {
				// Taken by the writer, or dropped by it after a failed write.
				batches <- db
			}
			if err != nil {
				collectErr = err
				return
			}
		}
	}()
	var writeErr error
	for db := range batches {
		if writeErr = write(db); writeErr != nil {
			cancel()
			for range batches { // drop what the collector still sends, unacknowledged
			}
			break
		}
	}
	<-done
	if writeErr != nil {
		return writeErr
	}
	return collectErr
}
