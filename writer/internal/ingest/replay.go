package ingest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"kohaku/pkg/normalize"
	"kohaku/pkg/stream"
	"kohaku/writer/internal/store"
)

// ReplayOptions configure Replay. Zero fields take the defaults named.
type ReplayOptions struct {
	// Since is the time of the first message to replay (its arrival in the stream).
	Since time.Time
	// Until, when set, is the time after which no message is replayed. Replay also
	// stops at the last message that the stream held when it started.
	Until time.Time
	// BatchSize and BatchWait batch as in Options (500, 200ms).
	BatchSize int
	BatchWait time.Duration
	// RetryMin, RetryMax and WriteTimeout are as in Options (100ms, 5s, 1m).
	RetryMin, RetryMax, WriteTimeout time.Duration
	// Progress, when set, receives a progress line every ProgressEvery (1s) and at the end.
	Progress      io.Writer
	ProgressEvery time.Duration
	// Logger receives what Replay does (discarded when nil).
	Logger *slog.Logger
}

// ReplayStats tells what a replay did.
type ReplayStats struct {
	Messages    int           // messages written (dead letters included)
	Rows        int           // rows written, new or already present
	NewRows     int           // rows that were not present yet
	DeadLetters int           // messages that can never be stored
	Elapsed     time.Duration // time from start to end
	// RowsFrom and RowsTo bound the row times (message timestamps) written, zero when no
	// row was: the window whose aggregates must be refreshed.
	RowsFrom, RowsTo time.Time
}

// Replay writes the messages of the stream from o.Since to o.Until (or to the stream's last
// message when it starts) into st again, through an ordered consumer of its own and the
// same idempotent path as Consumer: rows already present stay as they are, missing ones
// are added. It acknowledges nothing, so the durable consumer does not notice. Writes
// that fail are retried until ctx ends.
func Replay(ctx context.Context, js jetstream.JetStream, st *store.Store, o ReplayOptions) (ReplayStats, error) {
	co := Options{BatchSize: o.BatchSize, BatchWait: o.BatchWait, RetryMin: o.RetryMin, RetryMax: o.RetryMax, WriteTimeout: o.WriteTimeout, Logger: o.Logger}.withDefaults()
	if err := co.Validate(); err != nil {
		return ReplayStats{}, err
	}
	if o.ProgressEvery == 0 {
		o.ProgressEvery = time.Second
	}
	if !o.Until.IsZero() && o.Until.Before(o.Since) {
		return ReplayStats{}, fmt.Errorf("ingest: replay until %s is before since %s", o.Until.Format(time.RFC3339), o.Since.Format(time.RFC3339))
	}
	log := co.Logger.With("replay_since", o.Since)
	start := time.Now()

	s, err := js.Stream(ctx, stream.Name)
	if err != nil {
		return ReplayStats{}, fmt.Errorf("replay: find stream %s: %w", stream.Name, err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		return ReplayStats{}, fmt.Errorf("replay: read stream %s: %w", stream.Name, err)
	}
	last := info.State.LastSeq
	if info.State.Msgs == 0 || info.State.LastTime.Before(o.Since) {
		log.Info("replay: no message in the stream since then", "stream_last_time", info.State.LastTime)
		return ReplayStats{Elapsed: time.Since(start)}, nil
	}
	if info.State.FirstTime.After(o.Since) {
		log.Info("replay: the stream begins after the start of the period", "stream_first_time", info.State.FirstTime)
	}
	since := o.Since
	cons, err := s.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{
		DeliverPolicy: jetstream.DeliverByStartTimePolicy,
		OptStartTime:  &since,
	})
	if err != nil {
		return ReplayStats{}, fmt.Errorf("replay: create ordered consumer: %w", err)
	}
	it, err := cons.Messages(jetstream.PullMaxMessages(co.BatchSize))
	if err != nil {
		return ReplayStats{}, fmt.Errorf("replay: pull: %w", err)
	}
	defer it.Stop()

	p := &progress{start: start, last: last}
	if o.Progress != nil {
		pctx, stop := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() {
			defer close(done)
			p.report(pctx, o.Progress, o.ProgressEvery)
		}()
		defer func() {
			stop()
			<-done
			p.print(o.Progress, true)
		}()
	}

	accept := func(m jetstream.Msg) (keep, stop bool) {
		meta, err := m.Metadata()
		if err != nil {
			return true, false // decode dead-letters it with the reason
		}
		p.first.CompareAndSwap(0, meta.Sequence.Stream)
		if !o.Until.IsZero() && meta.Timestamp.After(o.Until) {
			return false, true
		}
		if meta.Sequence.Stream > last {
			return false, true // arrived after the replay started
		}
		p.seq.Store(meta.Sequence.Stream)
		return true, meta.Sequence.Stream == last
	}
	r := &retrier{st: st, log: log, min: co.RetryMin, max: co.RetryMax, timeout: co.WriteTimeout}
	var window timeWindow
	err = pipeline(ctx, it, co.BatchSize, co.BatchWait, accept, func(b *batch) error {
		res, err := r.write(ctx, b.items, nil, 0)
		if err != nil {
			return err
		}
		p.add(len(b.msgs), res)
		for _, m := range b.items {
			window.add(m.Rows)
		}
		return nil
	})
	switch {
	case errors.Is(err, errStop):
		st := p.stats()
		st.RowsFrom, st.RowsTo = window.from, window.to
		log.Info("replay done", "messages", st.Messages, "rows", st.Rows, "new_rows", st.NewRows, "dead_letters", st.DeadLetters, "elapsed", st.Elapsed.Round(time.Millisecond))
		return st, nil
	case ctx.Err() != nil:
		return p.stats(), fmt.Errorf("replay interrupted: %w", ctx.Err())
	default:
		return p.stats(), fmt.Errorf("replay: %w", err)
	}
}

// progress counts a replay's work for its progress line, read by another goroutine.
type progress struct {
	start                     time.Time
	last                      uint64 // stream sequence where the replay ends at the latest
	first                     atomic.Uint64
	seq                       atomic.Uint64 // last sequence written
	msgs, rows, newRows, dead atomic.Int64
}

func (p *progress) add(msgs int, res store.Result) {
	n := 0
	for _, v := range res.Inserted {
		n += v
	}
	p.msgs.Add(int64(msgs))
	p.rows.Add(int64(n + res.Duplicates))
	p.newRows.Add(int64(n))
	p.dead.Add(int64(len(res.Dead)))
}

func (p *progress) stats() ReplayStats {
	return ReplayStats{Messages: int(p.msgs.Load()), Rows: int(p.rows.Load()), NewRows: int(p.newRows.Load()),
		DeadLetters: int(p.dead.Load()), Elapsed: time.Since(p.start)}
}

func (p *progress) report(ctx context.Context, w io.Writer, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			p.print(w, false)
		}
	}
}

// print writes one progress line: messages and rows done, rate, and the time left,
// estimated from the stream sequences still ahead (an upper bound when Until is set).
func (p *progress) print(w io.Writer, final bool) {
	s := p.stats()
	rate := float64(s.Messages) / s.Elapsed.Seconds()
	left := uint64(0)
	if first, seq := p.first.Load(), p.seq.Load(); first != 0 && seq < p.last {
		left = p.last - seq
	}
	line := fmt.Sprintf("replay: %d messages, %d rows (%d new), %d dead letters, %.0f msg/s", s.Messages, s.Rows, s.NewRows, s.DeadLetters, rate)
	switch {
	case final:
		line += fmt.Sprintf(", %s in all", s.Elapsed.Round(time.Millisecond))
	case rate > 0:
		line += fmt.Sprintf(", at most %d left, about %s", left, time.Duration(float64(left)/rate*float64(time.Second)).Round(time.Second))
	}
	fmt.Fprintln(w, line)
}

// timeWindow is the span of the row times seen.
type timeWindow struct{ from, to time.Time }

// add widens w to the times of rows; the time is the first column of every table.
func (w *timeWindow) add(rows *normalize.Rows) {
	if rows == nil {
		return
	}
	for _, table := range rows.Tables {
		for _, row := range table {
			t, ok := row[0].(time.Time)
			if !ok {
				continue
			}
			if w.from.IsZero() || t.Before(w.from) {
				w.from = t
			}
			if t.After(w.to) {
				w.to = t
			}
		}
	}
}
