package ingest

import (
	"context"
	"sync"
	"sync/atomic"

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
	// prepared is items made ready to write, by the pipeline's prepare.
	prepared *store.Batch
}

// pipeline collects and decodes batches within b from it in one goroutine, prepares each
// there with prepare (when not nil) and hands it to write, called by writers goroutines
// (at least one) at once: the next batch is pulled, normalized and prepared while the
// database writes the last ones, and a batch has one owner at a time. Batches are handed
// over in the order collected but may finish in any order when writers is more than one.
// It holds at most the writers' batches being written, a decoded one waiting and the
// collector's held message (besides the iterator's pull buffer): the memory ceiling of
// README's "Operations". When collecting ends (ctx ended, accept saw the last message, the
// iterator failed) the batches collected so far are still written; pipeline then returns
// the collector's error. When a write fails, pipeline stops collecting, lets the other
// writes in progress finish, drops the batch it may hold (unacknowledged, so it comes
// again) and returns the first write error.
func pipeline(ctx context.Context, it jetstream.MessagesContext, b bounds, accept acceptFunc, writers int, prepare func(*decodedBatch), write func(*decodedBatch) error) error {
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
			if len(db.msgs) > 0 && prepare != nil {
				prepare(db)
			}
			if len(db.msgs) > 0 {
				// Taken by a writer, or dropped by one after a failed write.
				batches <- db
			}
			if err != nil {
				collectErr = err
				return
			}
		}
	}()
	var (
		wg       sync.WaitGroup
		failOnce sync.Once
		failed   atomic.Bool
		writeErr error
	)
	for range max(1, writers) {
		wg.Go(func() {
			for db := range batches {
				if failed.Load() {
					continue // dropped, unacknowledged: another write failed
				}
				if err := write(db); err != nil {
					failed.Store(true)
					failOnce.Do(func() {
						writeErr = err
						cancel()
					})
					for range batches { // drop what the collector still sends, unacknowledged
					}
					return
				}
			}
		})
	}
	wg.Wait()
	<-done
	if writeErr != nil {
		return writeErr
	}
	return collectErr
}
