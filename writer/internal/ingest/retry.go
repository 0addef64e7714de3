package ingest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"kohaku/pkg/retry"
	"kohaku/writer/internal/store"
)

// retrier writes batches, retrying failures with capped exponential backoff.
type retrier struct {
	st       *store.Store
	log      *slog.Logger
	min, max time.Duration // backoff bounds
	timeout  time.Duration // of one attempt
	// stalled, when not nil, is told of each failure and of the recovery (nil).
	stalled func(error)
}

// write stores items until it succeeds or ctx ends. An attempt in progress is not canceled
// by ctx, so that a shutdown finishes the batch it is writing; only waiting for the next
// attempt is. While it waits it calls keepAlive every keepEvery (when both are set), so
// that JetStream does not hand the messages to another writer meanwhile.
func (r *retrier) write(ctx context.Context, items []store.Message, keepAlive func(), keepEvery time.Duration) (store.Result, error) {
	var (
		b        = retry.Backoff{Min: r.min, Max: r.max}
		failed   time.Time
		attempts int
		lastKeep = time.Now()
	)
	for {
		actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), r.timeout)
		res, err := r.st.Write(actx, items)
		cancel()
		attempts++
		if err == nil {
			if attempts > 1 {
				r.log.Info("database write works again", "attempts", attempts, "outage", time.Since(failed).Round(time.Millisecond))
				if r.stalled != nil {
					r.stalled(nil)
				}
			}
			return res, nil
		}
		switch {
		case attempts > 1:
			r.log.Debug("database write failed again", "attempts", attempts, "messages", len(items), "err", err)
		case store.Transient(err):
			failed = time.Now()
			r.log.Warn("database unavailable, keeping the batch and retrying", "messages", len(items), "err", err)
		default:
			failed = time.Now()
			r.log.Error("database write failed, keeping the batch and retrying; this needs an operator", "messages", len(items), "err", err)
		}
		if r.stalled != nil {
			r.stalled(err)
		}
		if werr := b.Wait(ctx); werr != nil {
			return store.Result{}, fmt.Errorf("write %d messages: gave up after %d attempts: %w", len(items), attempts, errors.Join(werr, err))
		}
		if keepAlive != nil && keepEvery > 0 && time.Since(lastKeep) >= keepEvery {
			keepAlive()
			lastKeep = time.Now()
		}
	}
}
