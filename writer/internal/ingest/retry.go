package ingest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"kohaku/pkg/retry"
	"kohaku/writer/internal/store"
)

// retrier writes batches, retrying failures with capped exponential backoff. It is safe for
// concurrent use: several batches may be written, and retried, at once.
type retrier struct {
	st       *store.Store
	log      *slog.Logger
	min, max time.Duration // backoff bounds
	timeout  time.Duration // of one attempt
	// stalls, when not nil, is told of each failure and of each recovery.
	stalls *stalls
}

// prepare makes b's items ready to write, for the pipeline.
func (r *retrier) prepare(b *decodedBatch) { b.prepared = r.st.Prepare(b.items) }

// write stores batch until it succeeds or ctx ends. An attempt in progress is not canceled
// by ctx, so that a shutdown finishes the batch it is writing; only waiting for the next
// attempt is. While it waits it calls keepAlive every keepEvery (when both are set), so
// that JetStream does not hand the messages to another writer meanwhile.
func (r *retrier) write(ctx context.Context, batch *store.Batch, keepAlive func(), keepEvery time.Duration) (store.Result, error) {
	var (
		b        = retry.Backoff{Min: r.min, Max: r.max}
		failed   time.Time
		attempts int
		lastKeep = time.Now()
	)
	for {
		actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), r.timeout)
		res, err := r.st.WriteBatch(actx, batch)
		cancel()
		attempts++
		if err == nil {
			if attempts > 1 {
				r.log.Info("database write works again", "attempts", attempts, "outage", time.Since(failed).Round(time.Millisecond))
				r.stalls.recovered()
			}
			return res, nil
		}
		switch {
		case attempts > 1:
			r.log.Debug("database write failed again", "attempts", attempts, "messages", batch.Len(), "err", err)
		case store.Transient(err):
			failed = time.Now()
			r.log.Warn("database unavailable, keeping the batch and retrying", "messages", batch.Len(), "err", err)
		default:
			failed = time.Now()
			r.log.Error("database write failed, keeping the batch and retrying; this needs an operator", "messages", batch.Len(), "err", err)
		}
		r.stalls.failed(attempts == 1, err)
		if werr := b.Wait(ctx); werr != nil {
			r.stalls.recovered() // given up: this batch no longer holds the writer
			return store.Result{}, fmt.Errorf("write %d messages: gave up after %d attempts: %w", batch.Len(), attempts, errors.Join(werr, err))
		}
		if keepAlive != nil && keepEvery > 0 && time.Since(lastKeep) >= keepEvery {
			keepAlive()
			lastKeep = time.Now()
		}
	}
}

// stalls counts the batches being retried, so that a writer writing several batches at once
// is stalled while any of them fails and ready only when none does. A nil *stalls does
// nothing.
type stalls struct {
	set func(error) // told the last failure while a batch fails, nil once none does

	mu      sync.Mutex
	failing int // batches between their first failure and their success (or giving up)
}

// failed records a failed attempt to write a batch; first tells whether it was the batch's
// first failure.
func (s *stalls) failed(first bool, err error) {
	if s == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if first {
		s.failing++
	}
	s.set(err)
}

// recovered records that a batch that failed no longer does.
func (s *stalls) recovered() {
	if s == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.failing--; s.failing <= 0 {
		s.failing = 0
		s.set(nil)
	}
}
