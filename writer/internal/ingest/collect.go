package ingest

import (
	"context"
	"errors"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// errStop tells collect's caller that accept saw the last message it wants.
var errStop = errors.New("ingest: last message reached")

// acceptFunc decides about a message as it arrives: keep it in the batch or not, and
// whether it is the last one wanted. nil keeps every message.
type acceptFunc func(jetstream.Msg) (keep, last bool)

// collect returns the next batch from it: it waits for a first message as long as ctx
// allows, then takes more until it has max or wait has passed since the first. With the
// batch it returns ctx's error when ctx ended, errStop when accept saw the last message, or
// the iterator's error; the messages already collected are valid in every case.
func collect(ctx context.Context, it jetstream.MessagesContext, max int, wait time.Duration, accept acceptFunc) ([]jetstream.Msg, error) {
	b := make([]jetstream.Msg, 0, max)
	nctx := ctx
	for len(b) < max {
		m, err := it.Next(jetstream.NextContext(nctx))
		if err != nil {
			if ctx.Err() != nil {
				return b, ctx.Err()
			}
			if nctx != ctx && errors.Is(err, context.DeadlineExceeded) {
				return b, nil // the batch's wait is over
			}
			return b, err
		}
		keep, last := true, false
		if accept != nil {
			keep, last = accept(m)
		}
		if keep {
			b = append(b, m)
		}
		if last {
			return b, errStop
		}
		if len(b) == 1 && nctx == ctx {
			// The wait starts with the first message: an idle stream costs nothing.
			var cancel context.CancelFunc
			nctx, cancel = context.WithTimeout(ctx, wait)
			defer cancel()
		}
	}
	return b, nil
}
