package ingest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"kohaku/pkg/normalize"
	"kohaku/pkg/retry"
	"kohaku/pkg/stream"
	"kohaku/writer/internal/store"
)

// errStop tells collect's caller that accept saw the last message it wants.
var errStop = errors.New("ingest: last message reached")

// acceptFunc decides about a message as it arrives: keep it in the batch or not, and
// whether it is the last one wanted. nil keeps every message.
type acceptFunc func(jetstream.Msg) (keep, last bool)

// batch is a batch of messages on its way from the iterator to the database.
type batch struct {
	msgs  []jetstream.Msg
	items []store.Message // msgs decoded, in the same order
	again int             // how many of msgs are redeliveries
}

// pipeline collects and decodes batches from it in one goroutine and hands each, in order,
// to write in the calling goroutine: the next batch is pulled and normalized while the
// database writes the last one, and a batch has one owner at a time. When collecting ends
// (ctx ended, accept saw the last message, the iterator failed) the batch collected so far
// is still written; pipeline then returns collect's error. When write fails, pipeline
// stops collecting, drops the batch it may hold (unacknowledged, so it comes again) and
// returns write's error.
func pipeline(ctx context.Context, it jetstream.MessagesContext, size int, wait time.Duration, accept acceptFunc, write func(*batch) error) error {
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	batches := make(chan *batch) // unbuffered: at most one batch waits, decoded
	var collectErr error
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer close(batches)
		for {
			msgs, err := collect(cctx, it, size, wait, accept)
			if len(msgs) > 0 {
				items, again := decode(msgs)
				// Taken by the writer, or dropped by it after a failed write.
				batches <- &batch{msgs: msgs, items: items, again: again}
			}
			if err != nil {
				collectErr = err
				return
			}
		}
	}()
	var writeErr error
	for b := range batches {
		if writeErr = write(b); writeErr != nil {
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

// decode turns msgs into store messages, normalizing the bodies in parallel: normalizing
// is the writer's CPU work, and a batch of a few hundred bodies spreads well over the
// cores. It leaves one core free: decode runs while the previous batch is copied, and the
// COPY needs the writing goroutine and, on a single machine, the database's backend to run
// without waiting; on two cores the writer drained about 10 % faster so (kohaku-bench).
// It also returns how many of msgs JetStream delivered more than once.
func decode(msgs []jetstream.Msg) ([]store.Message, int) {
	out := make([]store.Message, len(msgs))
	again := make([]bool, len(msgs))
	workers := min(max(1, runtime.GOMAXPROCS(0)-1), (len(msgs)+15)/16)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := w; i < len(msgs); i += workers {
				out[i], again[i] = decodeOne(msgs[i])
			}
		})
	}
	wg.Wait()
	n := 0
	for _, a := range again {
		if a {
			n++
		}
	}
	return out, n
}

// decodeOne normalizes msg's body; any error of normalize.Message is final, the body
// being all there is to it. It also tells whether msg is a redelivery.
func decodeOne(msg jetstream.Msg) (store.Message, bool) {
	m := store.Message{Subject: msg.Subject(), Header: msg.Headers(), Body: msg.Data(), ExporterType: exporterType(msg)}
	meta, err := msg.Metadata()
	if err != nil {
		m.Err = fmt.Errorf("read message metadata: %w", err)
		return m, false
	}
	m.Seq = meta.Sequence.Stream
	m.Rows, m.Err = normalize.Message(m.ExporterType, m.Body)
	return m, meta.NumDelivered > 1
}

// exporterType is the Sora exporter type of msg: its header, or else its subject's last part.
func exporterType(msg jetstream.Msg) string {
	if t := msg.Headers().Get(stream.HeaderExporterType); t != "" {
		return t
	}
	return strings.TrimPrefix(msg.Subject(), stream.SubjectPrefix)
}

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
