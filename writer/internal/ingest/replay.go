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

	"kohaku/pkg/stream"
	"kohaku/writer/internal/progress"
	"kohaku/writer/internal/store"
)

// ReplayOptions configure Replay.
type ReplayOptions struct {
	// Options batch and retry as the Consumer does; MaxAckPending, AckWait,
	// StreamTrimPercent, Durable and LagEvery are not used, although Options must be valid.
	Options
	// Since is the time of the first message to replay (its arrival in the stream).
	Since time.Time
	// Until, when set, is the time after which no message is replayed. Replay also
	// stops at the last message that the stream held when it started.
	Until time.Time
	// Progress, when set, receives a progress line at the start and every ProgressEvery
	// (1s when zero); the summary line is the caller's (ReplayStats.Summary).
	Progress      io.Writer
	ProgressEvery time.Duration
}

// ReplayStats tells what a replay did.
type ReplayStats struct {
	Messages    int           // messages written (dead letters included)
	Rows        int           // stats rows written, new or already present
	NewRows     int           // stats rows that were not present yet
	DeadLetters int           // messages that can never be stored
	Elapsed     time.Duration // time from start to end
	// Left counts the stream sequences of the period not written when Replay returned
	// early, 0 when it finished.
	Left int
	// Unfinished tells that Replay returned an error before the end of the period.
	Unfinished bool
	// RowsFrom and RowsTo bound the row times (message timestamps) written, zero when no
	// row was: the window whose aggregates must be refreshed.
	RowsFrom, RowsTo time.Time
}

// Summary is the line that ends replay's output, shaped like its progress lines.
func (s ReplayStats) Summary() string { return s.status().Summary() }

func (s ReplayStats) status() progress.Status {
	return progress.Status{
		Command: "replay",
		Counts: fmt.Sprintf("%d messages, %d rows (%d already present), %d dead letters",
			s.Messages, s.Rows, s.Rows-s.NewRows, s.DeadLetters),
		Done:       s.Messages,
		Unit:       "msg",
		Elapsed:    s.Elapsed,
		Left:       s.Left,
		Unfinished: s.Unfinished,
	}
}

// Replay writes the messages of the stream from o.Since to o.Until (or to the stream's last
// message when it starts) into st again, through an ordered consumer of its own and the
// same idempotent path as Consumer: rows already present stay as they are, missing ones
// are added. It acknowledges nothing, so the durable consumer does not notice. Writes
// that fail are retried until ctx ends. It fails unless o.Options is valid
// (Options.Validate), and logs to log (nothing when nil).
func Replay(ctx context.Context, js jetstream.JetStream, st *store.Store, o ReplayOptions, log *slog.Logger) (ReplayStats, error) {
	start := time.Now()
	fail := func(err error) (ReplayStats, error) {
		return ReplayStats{Elapsed: time.Since(start), Unfinished: true}, err
	}
	co, err := o.Options.prepare()
	if err != nil {
		return fail(err)
	}
	if o.ProgressEvery == 0 {
		o.ProgressEvery = time.Second
	}
	if !o.Until.IsZero() && o.Until.Before(o.Since) {
		return fail(fmt.Errorf("ingest: replay until %s is before since %s", o.Until.Format(time.RFC3339), o.Since.Format(time.RFC3339)))
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("replay_since", o.Since)

	s, err := js.Stream(ctx, stream.Name)
	if err != nil {
		return fail(fmt.Errorf("replay: find stream %s: %w", stream.Name, err))
	}
	info, err := s.Info(ctx)
	if err != nil {
		return fail(fmt.Errorf("replay: read stream %s: %w", stream.Name, err))
	}
	if info.State.Msgs == 0 || info.State.LastTime.Before(o.Since) {
		log.Info("no message in the stream since then", "stream_last_time", info.State.LastTime)
		return ReplayStats{Elapsed: time.Since(start)}, nil
	}
	if info.State.FirstTime.After(o.Since) {
		log.Info("the stream begins after the start of the period", "stream_first_time", info.State.FirstTime)
	}
	end := info.State.LastSeq // the last sequence to write
	if !o.Until.IsZero() && info.State.LastTime.After(o.Until) {
		if end, err = lastSeqUntil(ctx, s, o.Until); err != nil {
			return fail(err)
		}
	}
	since := o.Since
	cons, err := s.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{
		DeliverPolicy: jetstream.DeliverByStartTimePolicy,
		OptStartTime:  &since,
	})
	if err != nil {
		return fail(fmt.Errorf("replay: create ordered consumer: %w", err))
	}
	c := &counter{start: start, end: end}
	if ci := cons.CachedInfo(); ci != nil {
		// A new consumer reports the sequence before its first as delivered: the replay's
		// position before it wrote anything.
		c.advance(ci.Delivered.Stream)
	}
	if c.pos.Load() >= end {
		log.Info("no message in the stream in that period", "replay_until", o.Until)
		return ReplayStats{Elapsed: time.Since(start)}, nil
	}
	it, err := cons.Messages(co.pullOptions(js.Conn())...)
	if err != nil {
		return fail(fmt.Errorf("replay: pull: %w", err))
	}
	defer it.Stop()

	if o.Progress != nil {
		pctx, stop := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() {
			defer close(done)
			progress.Report(pctx, o.Progress, o.ProgressEvery, func() progress.Status { return c.stats().status() })
		}()
		defer func() {
			stop()
			<-done
		}()
	}

	started := false // accept runs in one goroutine, the pipeline's collector
	accept := func(m jetstream.Msg) (keep, stop bool) {
		meta, err := m.Metadata()
		if err != nil {
			return true, false // decode dead-letters it with the reason
		}
		seq := meta.Sequence.Stream
		if !started {
			started = true
			c.advance(seq - 1) // where the replay starts, if the consumer did not tell
		}
		if seq > end || (!o.Until.IsZero() && meta.Timestamp.After(o.Until)) {
			return false, true // arrived after the replay started, or after the period
		}
		return true, seq == end
	}
	r := &retrier{st: st, log: log, min: co.RetryMin, max: co.RetryMax, timeout: co.WriteTimeout}
	var window store.TimeWindow
	err = pipeline(ctx, it, co.bounds(), accept, 1, r.prepare, func(b *decodedBatch) error {
		res, err := r.write(ctx, b.prepared, nil, 0)
		if err != nil {
			return err
		}
		var last uint64
		for _, m := range b.items {
			window.Add(m.Rows)
			last = max(last, m.Seq)
		}
		// Counted once written, not once pulled: the pipeline pulls a batch or two ahead.
		c.add(len(b.msgs), res, last)
		return nil
	})
	rs := c.stats()
	rs.RowsFrom, rs.RowsTo = window.From, window.To
	switch {
	case errors.Is(err, errStop):
		rs.Left = 0 // the period ends here, whatever the sequences after it
		log.Info("replay done", "messages", rs.Messages, "rows", rs.Rows, "new_rows", rs.NewRows, "dead_letters", rs.DeadLetters, "elapsed", rs.Elapsed.Round(time.Millisecond))
		return rs, nil
	case ctx.Err() != nil:
		rs.Unfinished = true
		return rs, fmt.Errorf("replay interrupted: %w", ctx.Err())
	default:
		rs.Unfinished = true
		return rs, fmt.Errorf("replay: %w", err)
	}
}

// lastSeqUntil returns the sequence of the stream's last message stored at or before t.
// A consumer that starts after t reports the sequence before its first message as
// delivered, which is that one; the consumer is deleted again at once.
func lastSeqUntil(ctx context.Context, s jetstream.Stream, t time.Time) (uint64, error) {
	after := t.Add(time.Nanosecond)
	cons, err := s.CreateConsumer(ctx, jetstream.ConsumerConfig{
		DeliverPolicy:     jetstream.DeliverByStartTimePolicy,
		OptStartTime:      &after,
		AckPolicy:         jetstream.AckNonePolicy,
		MemoryStorage:     true,
		InactiveThreshold: time.Minute, // removed by the server if the delete below is lost
	})
	if err != nil {
		return 0, fmt.Errorf("replay: find the end of the period: %w", err)
	}
	ci := cons.CachedInfo()
	s.DeleteConsumer(ctx, ci.Name) // best effort: InactiveThreshold removes it otherwise
	return ci.Delivered.Stream, nil
}

// counter counts a replay's work for its progress lines, read by another goroutine.
type counter struct {
	start                     time.Time
	end                       uint64        // stream sequence of the period's last message
	pos                       atomic.Uint64 // sequence of the last message written, or before the first
	msgs, rows, newRows, dead atomic.Int64
}

// advance moves the position forward to seq, never back.
func (c *counter) advance(seq uint64) {
	for {
		cur := c.pos.Load()
		if seq <= cur || c.pos.CompareAndSwap(cur, seq) {
			return
		}
	}
}

// add counts a batch of msgs written with the result res; last is its highest sequence.
func (c *counter) add(msgs int, res store.Result, last uint64) {
	n := res.NewStatsRows()
	c.msgs.Add(int64(msgs))
	c.rows.Add(int64(n + res.Duplicates))
	c.newRows.Add(int64(n))
	c.dead.Add(int64(len(res.Dead)))
	c.advance(last)
}

// stats is what was written so far, and how many stream sequences of the period are left:
// exact but for messages deleted from the middle of the stream, which are counted.
func (c *counter) stats() ReplayStats {
	left := 0
	if pos := c.pos.Load(); pos < c.end {
		left = int(c.end - pos)
	}
	return ReplayStats{Messages: int(c.msgs.Load()), Rows: int(c.rows.Load()), NewRows: int(c.newRows.Load()),
		DeadLetters: int(c.dead.Load()), Elapsed: time.Since(c.start), Left: left}
}
