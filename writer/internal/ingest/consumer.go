package ingest

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"kohaku/pkg/retry"
	"kohaku/pkg/stream"
	"kohaku/writer/internal/store"
)

// Options configure a Consumer, and Replay with ReplayOptions. BatchSize to BatchMaxRows are
// part of the writer's configuration: each is the variable its tag names (KOHAKU_
// prefixed), with its default there. The fields after them are no configuration: tests and
// benchmarks change them, and zero takes the value named.
type Options struct {
	// BatchSize is the most messages written in one transaction.
	BatchSize int `split_words:"true" default:"500" desc:"most messages written in one transaction"`
	// BatchWait is how long a batch waits for more messages after its first.
	BatchWait time.Duration `split_words:"true" default:"200ms" desc:"how long a batch waits for more messages after its first"`
	// MaxAckPending is the most messages delivered to all writers of the consumer and
	// not yet acknowledged.
	MaxAckPending int `split_words:"true" default:"2000" desc:"most messages delivered to all writers and not yet acknowledged"`
	// AckWait is how long JetStream waits for an acknowledgement before it delivers a
	// message again.
	AckWait time.Duration `split_words:"true" default:"30s" desc:"time after which JetStream delivers an unacknowledged message again"`
	// WriteTimeout bounds one attempt to write a batch.
	WriteTimeout time.Duration `split_words:"true" default:"1m" desc:"longest attempt to write one batch before it is retried"`
	// BatchMaxBytes is the most message bytes in one batch; a larger message is a batch of
	// its own. It also sizes the pull buffer (with the NATS server's max payload when that
	// is larger): with BatchMaxRows it sets the writer's memory ceiling.
	BatchMaxBytes int `split_words:"true" default:"8388608" desc:"most message bytes written in one transaction (a larger message is written alone); also the pull buffer's size"`
	// BatchMaxRows is the most stats rows in one batch, all tables together; a message
	// with more is a batch of its own.
	BatchMaxRows int `split_words:"true" default:"50000" desc:"most stats rows written in one transaction (a message with more is written alone)"`
	// WriteConnections is how many batches are written at once, each in its own
	// transaction on its own database connection and acknowledged after its own commit.
	// Batches may then commit in another order than they were pulled: natural keys make
	// the order irrelevant. The writer holds up to that many batches being written, so it
	// multiplies the memory ceiling's batches (README, "Operations").
	WriteConnections int `split_words:"true" default:"1" desc:"batches written at once, each in its own transaction on its own database connection; more drains faster when PostgreSQL has idle cores, and multiplies the batches held in memory"`
	// StreamTrimPercent is how much of the stream's MaxBytes written messages may take: the
	// Consumer purges the oldest messages that the consumer has acknowledged beyond it
	// (stream.Trim), so that the stream, which refuses new messages when full, keeps the
	// rest free for an outage of the database. Unwritten messages are never purged.
	StreamTrimPercent int `split_words:"true" default:"50" desc:"percentage of KOHAKU_STREAM_MAX_BYTES beyond which the writer deletes the oldest messages it has written, keeping the rest of the stream free for a database outage (the stream refuses new messages when full); 100 deletes none"`

	// Durable is the name of the durable consumer, stream.Consumer ("kohaku-writer") when
	// empty; writers with the same name share the messages.
	Durable string `ignored:"true"`
	// RetryMin and RetryMax bound the backoff between attempts to write a batch (100ms, 5s).
	RetryMin, RetryMax time.Duration `ignored:"true"`
	// LagEvery is how often the stream's and the consumer's state are read, for the lag
	// and stream metrics, to find lost messages and to trim (5s).
	LagEvery time.Duration `ignored:"true"`
}

// Validate reports every invalid configuration field of o, naming its variable.
func (o Options) Validate() error {
	var errs []error
	if o.BatchSize < 1 {
		errs = append(errs, fmt.Errorf("KOHAKU_BATCH_SIZE must be at least 1, got %d", o.BatchSize))
	}
	if o.BatchWait < 0 {
		errs = append(errs, fmt.Errorf("KOHAKU_BATCH_WAIT must not be negative, got %s", o.BatchWait))
	}
	if o.MaxAckPending < o.BatchSize {
		// Fewer could never fill a batch: every batch would wait for BatchWait.
		errs = append(errs, fmt.Errorf("KOHAKU_MAX_ACK_PENDING (%d) must be at least KOHAKU_BATCH_SIZE (%d)", o.MaxAckPending, o.BatchSize))
	}
	if o.AckWait < time.Second {
		errs = append(errs, fmt.Errorf("KOHAKU_ACK_WAIT must be at least 1s, got %s", o.AckWait))
	}
	if o.WriteTimeout <= 0 {
		errs = append(errs, fmt.Errorf("KOHAKU_WRITE_TIMEOUT must be positive, got %s", o.WriteTimeout))
	}
	if o.BatchMaxBytes < minBatchBytes {
		// Smaller would make a batch of nearly every report: a Chromium report is 12 KB.
		errs = append(errs, fmt.Errorf("KOHAKU_BATCH_MAX_BYTES must be at least %d, got %d", minBatchBytes, o.BatchMaxBytes))
	}
	if o.BatchMaxRows < 1 {
		errs = append(errs, fmt.Errorf("KOHAKU_BATCH_MAX_ROWS must be at least 1, got %d", o.BatchMaxRows))
	}
	if o.WriteConnections < 1 {
		errs = append(errs, fmt.Errorf("KOHAKU_WRITE_CONNECTIONS must be at least 1, got %d", o.WriteConnections))
	}
	if o.StreamTrimPercent < 1 || o.StreamTrimPercent > 100 {
		errs = append(errs, fmt.Errorf("KOHAKU_STREAM_TRIM_PERCENT must be 1 to 100, got %d", o.StreamTrimPercent))
	}
	return errors.Join(errs...)
}

// minBatchBytes is the smallest KOHAKU_BATCH_MAX_BYTES.
const minBatchBytes = 64 << 10

// pullSlack is room in the pull buffer for what JetStream counts besides a message's
// payload: its subject and the acknowledgement subject.
const pullSlack = 4 << 10

// pullOptions bound the pull buffer of an iterator of the stream on nc in bytes, not in
// messages, so that it holds a bounded amount however large the messages: BatchMaxBytes, or
// the server's max payload when that is larger, since a pull that cannot take the largest
// message would stall. MaxAckPending bounds the number of messages.
func (o Options) pullOptions(nc *nats.Conn) []jetstream.PullMessagesOpt {
	return []jetstream.PullMessagesOpt{jetstream.PullMaxBytes(o.pullBytes(nc.MaxPayload()))}
}

// pullBytes is the size of the pull buffer when the largest message has maxPayload bytes.
func (o Options) pullBytes(maxPayload int64) int {
	return max(o.BatchMaxBytes, int(maxPayload)) + pullSlack
}

// prepare validates o and gives its zero non-configuration fields their values.
func (o Options) prepare() (Options, error) {
	if err := o.Validate(); err != nil {
		return o, err
	}
	o.Durable = cmp.Or(o.Durable, stream.Consumer)
	o.RetryMin = cmp.Or(o.RetryMin, 100*time.Millisecond)
	o.RetryMax = cmp.Or(o.RetryMax, 5*time.Second)
	o.LagEvery = cmp.Or(o.LagEvery, 5*time.Second)
	if o.RetryMin <= 0 || o.RetryMax < o.RetryMin {
		return o, fmt.Errorf("ingest: want 0 < RetryMin (%s) <= RetryMax (%s)", o.RetryMin, o.RetryMax)
	}
	return o, nil
}

// Consumer pulls from the durable consumer and writes what it pulls. Each message is
// acknowledged after the transaction that stored it committed, or terminated after the one
// that dead-lettered it; a message that is neither comes again, and the store's natural
// keys make that harmless. Every few seconds it looks at the stream (stream.Monitor): for
// the stream's and the lag's series, to find messages lost past KOHAKU_STREAM_MAX_AGE
// (losses), and to purge what was written beyond StreamTrimPercent (stream.Trim).
type Consumer struct {
	js   jetstream.JetStream
	st   *store.Store
	o    Options
	m    *metrics
	log  *slog.Logger
	r    *retrier
	mon  *stream.Monitor
	loss *losses

	trimFailing bool // the last trim failed; owned by the Monitor's goroutine

	isBound atomic.Bool
	stalled atomic.Pointer[error] // why a held batch cannot be written, nil when every one can
}

// New returns a Consumer of the KOHAKU stream in js writing to st. It fails unless o is
// valid (Options.Validate). It logs to log (nothing when nil) and registers its metrics with
// reg (a registry of its own when nil). Nothing happens until Run.
func New(js jetstream.JetStream, st *store.Store, o Options, log *slog.Logger, reg prometheus.Registerer) (*Consumer, error) {
	o, err := o.prepare()
	if err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	c := &Consumer{js: js, st: st, o: o, m: newMetrics(reg), log: log.With("consumer", o.Durable)}
	c.r = &retrier{st: st, log: c.log, min: o.RetryMin, max: o.RetryMax, timeout: o.WriteTimeout, stalls: &stalls{set: c.setStalled}}
	c.loss = &losses{log: c.log, lost: c.m.lost}
	c.mon = stream.NewMonitor(js, stream.MonitorOptions{Every: o.LagEvery, Consumer: o.Durable, Observe: c.observe}, c.log, reg)
	return c, nil
}

func (c *Consumer) setStalled(err error) {
	if err == nil {
		c.stalled.Store(nil)
		c.m.stalled.Set(0)
		return
	}
	c.stalled.Store(&err)
	c.m.stalled.Set(1)
}

// Ready reports why the consumer cannot write now: NATS is not connected, it is not bound
// to the durable consumer, a batch it holds cannot be written, or the database does not answer.
func (c *Consumer) Ready(ctx context.Context) error {
	if nc := c.js.Conn(); !nc.IsConnected() {
		return fmt.Errorf("NATS not connected (%s)", nc.Status())
	}
	if !c.isBound.Load() {
		return fmt.Errorf("consumer %s of stream %s is not bound", c.o.Durable, stream.Name)
	}
	if p := c.stalled.Load(); p != nil {
		return fmt.Errorf("cannot write to the database: %w", *p)
	}
	return c.st.Ping(ctx)
}

// Run binds the durable consumer, creating or updating it (waiting while JetStream cannot
// be reached), and writes batches until ctx ends. Then it finishes the batches it holds
// (commit, then acknowledge) unless the database is failing, and returns nil: what it did
// not acknowledge is delivered again later. It binds again when pulling fails, for example
// when the consumer was deleted. It returns an error only when it cannot go on.
func (c *Consumer) Run(ctx context.Context) error {
	mctx, stopMonitor := context.WithCancel(ctx)
	monitored := make(chan struct{})
	go func() {
		c.mon.Run(mctx)
		close(monitored)
	}()
	defer func() {
		stopMonitor()
		<-monitored
	}()
	for {
		cons, err := c.bind(ctx)
		if err != nil {
			return nil // ctx ended
		}
		err = c.pull(ctx, cons)
		if ctx.Err() != nil {
			return nil
		}
		c.log.Warn("pulling from the consumer failed, binding again", "err", err)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(c.o.RetryMin):
		}
	}
}

// bind creates or updates the durable consumer, retrying with backoff until it succeeds or
// ctx ends.
func (c *Consumer) bind(ctx context.Context) (jetstream.Consumer, error) {
	cfg := jetstream.ConsumerConfig{
		Durable:       c.o.Durable,
		Description:   "Kohaku writers: stream messages into PostgreSQL",
		DeliverPolicy: jetstream.DeliverAllPolicy,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       c.o.AckWait,
		// Unlimited: a database outage may take many AckWaits, and messages that can
		// never be stored are terminated by the writer itself.
		MaxDeliver:    -1,
		MaxAckPending: c.o.MaxAckPending,
	}
	b := retry.Backoff{Min: c.o.RetryMin, Max: c.o.RetryMax}
	for attempt := 1; ; attempt++ {
		cons, err := c.js.CreateOrUpdateConsumer(ctx, stream.Name, cfg)
		if err == nil {
			err = c.bound(ctx, cons)
		}
		if err == nil {
			if attempt > 1 {
				c.log.Info("consumer bound", "attempts", attempt)
			}
			return cons, nil
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if attempt == 1 {
			c.log.Warn("cannot bind the consumer, retrying", "stream", stream.Name, "err", err)
		}
		if err := b.Wait(ctx); err != nil {
			return nil, err
		}
	}
}

// bound gives the loss check the consumer's state as bound, with the stream's: messages
// gone above the ack floor while no writer ran are counted there.
func (c *Consumer) bound(ctx context.Context, cons jetstream.Consumer) error {
	s, err := c.js.Stream(ctx, stream.Name)
	if err != nil {
		return fmt.Errorf("look up stream %s: %w", stream.Name, err)
	}
	c.loss.bound(cons.CachedInfo(), s.CachedInfo().State)
	return nil
}

// pull writes batches from cons until ctx ends or pulling fails.
func (c *Consumer) pull(ctx context.Context, cons jetstream.Consumer) error {
	// The pull buffer holds one batch's bytes: the next batch arrives while these are
	// written, and a writer that is stuck holds at most the pipeline's batches and the
	// buffer (doc.go).
	it, err := cons.Messages(c.o.pullOptions(c.js.Conn())...)
	if err != nil {
		return fmt.Errorf("pull from consumer %s: %w", c.o.Durable, err)
	}
	defer it.Stop()
	c.isBound.Store(true)
	defer c.isBound.Store(false)
	defer c.loss.unbound()
	// Every delivery, as it arrives, is checked for sequences skipped before it.
	check := func(m jetstream.Msg) (keep, last bool) {
		if meta, err := m.Metadata(); err == nil {
			c.loss.delivered(meta)
		}
		return true, false
	}
	return pipeline(ctx, it, c.o.bounds(), check, c.o.WriteConnections, c.r.prepare, func(b *decodedBatch) error { return c.flush(ctx, b) })
}

// flush writes b, retrying until it succeeds or ctx ends, then acknowledges its messages:
// Ack for the stored, Term for the dead-lettered. Acks are not awaited: one that is lost
// makes JetStream deliver the message again, and the duplicate is found by its keys.
func (c *Consumer) flush(ctx context.Context, b *decodedBatch) error {
	msgs := b.msgs
	c.m.redeliveries.Add(float64(b.again))
	c.m.batchMessages.Observe(float64(len(msgs)))
	c.m.batchBytes.Observe(float64(b.bytes))
	c.m.batchRows.Observe(float64(b.rows))
	keepAlive := func() {
		for _, m := range msgs {
			m.InProgress() // best effort: a lost one means a redelivery, no loss
		}
	}
	res, err := c.r.write(ctx, b.prepared, keepAlive, c.o.AckWait/3)
	if err != nil {
		return err
	}
	var ackErr error
	failed, dead := 0, 0
	for i, m := range msgs {
		var err error
		if dead < len(res.Dead) && res.Dead[dead] == i {
			dead++
			// Term, not TermWithReason: nats-server before 2.10.4 ignores the latter.
			err = m.Term()
		} else {
			err = m.Ack()
		}
		if err != nil {
			failed++
			ackErr = err
		}
	}
	if failed > 0 {
		c.m.ackErrors.Add(float64(failed))
		c.log.Warn("acknowledgements not sent; those messages will come again", "messages", failed, "err", ackErr)
	}
	if meta, err := msgs[len(msgs)-1].Metadata(); err == nil {
		c.m.pending.Set(float64(meta.NumPending))
	}
	return nil
}

// observe takes a look of the Monitor at the stream and the consumer: it sets the lag
// gauges, counts the messages gone undelivered, and purges the written messages beyond
// StreamTrimPercent.
func (c *Consumer) observe(ctx context.Context, snap *stream.Snapshot) {
	ci := snap.Consumer
	c.m.pending.Set(float64(ci.NumPending))
	c.m.ackPending.Set(float64(ci.NumAckPending))
	c.loss.observed(ci, snap.Info.State)
	n, err := stream.Trim(ctx, snap, c.o.StreamTrimPercent)
	switch {
	case err != nil && !c.trimFailing:
		c.log.Warn("cannot delete written messages from the stream; it may fill up", "err", err)
		c.trimFailing = true
	case err == nil:
		c.trimFailing = false
		if n > 0 {
			c.m.trimmed.Add(float64(n))
			c.log.Debug("deleted written messages from the stream", "messages", n,
				"bytes", snap.Info.State.Bytes, "max_bytes", snap.Info.Config.MaxBytes)
		}
	}
}
