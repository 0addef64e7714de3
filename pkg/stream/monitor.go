package stream

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
)

// MonitorOptions configure a Monitor. Zero fields take the value named.
type MonitorOptions struct {
	// Every is the time between two looks at the stream and the consumer (5s).
	Every time.Duration
	// FullEvery is the time between two looks at the stream alone while it is full (2s),
	// so that readiness comes back soon after there is room again.
	FullEvery time.Duration
	// Consumer is the durable consumer whose oldest unacknowledged message is measured
	// (Consumer, "kohaku-writer").
	Consumer string
	// Observe, when set, is given every snapshot that includes the consumer, on the
	// Monitor's goroutine, before the next look: the writer finds lost messages and trims
	// the stream there. It must return within Every.
	Observe func(ctx context.Context, s *Snapshot)
}

// Snapshot is the state of the stream, and of the writers' consumer, as one look found it.
type Snapshot struct {
	At       time.Time
	Stream   jetstream.Stream        // the stream, for requests of the Observe function
	Info     *jetstream.StreamInfo   // its configuration and state
	Consumer *jetstream.ConsumerInfo // nil when the consumer does not exist
	// Oldest is the stored time of the oldest message that Consumer has not acknowledged,
	// the first one above its ack floor; zero when there is none.
	Oldest time.Time
}

// Monitor looks at the stream every few seconds, never more often whatever asks: it keeps
// the stream's fill and the age of the writers' oldest unacknowledged message as Prometheus
// series (it is a prometheus.Collector; scrapes read what the last look found), and tells
// a receiver whether the stream is full (Full).
//
// The stream is full from the moment a publish is refused as full (Refused) until a look
// finds room for the refused message: a DiscardNew stream refuses a message that does not
// fit, so the stored bytes alone never reach MaxBytes and cannot tell. While full it looks
// at the stream alone every FullEvery, and at the consumer too every Every. Run makes the
// looks; without it, Full stays failed after the first refusal.
type Monitor struct {
	js     jetstream.JetStream
	o      MonitorOptions
	log    *slog.Logger
	wake   chan struct{} // a refusal: look again within FullEvery
	series series

	mu   sync.Mutex
	last *Snapshot // the last successful look, nil before the first
	need int64     // bytes of the largest message refused since the stream last had room
	full error     // why the stream is full, nil when it has room
	// refusedAt is when the last refusal was recorded: a look that began before it may
	// show the stream as it was before it filled, and does not clear full.
	refusedAt time.Time
}

// NewMonitor returns a Monitor of the stream in js. It logs to log (nothing when nil) and
// registers its series with reg (nowhere when nil). Nothing is looked at until Run.
func NewMonitor(js jetstream.JetStream, o MonitorOptions, log *slog.Logger, reg prometheus.Registerer) *Monitor {
	o.Every = cmp.Or(o.Every, 5*time.Second)
	o.FullEvery = cmp.Or(o.FullEvery, 2*time.Second)
	o.Consumer = cmp.Or(o.Consumer, Consumer)
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	m := &Monitor{js: js, o: o, log: log, wake: make(chan struct{}, 1), series: newSeries()}
	if reg != nil {
		reg.MustRegister(m)
	}
	return m
}

// Run looks at the stream until ctx ends: at once, then every Every, or every FullEvery
// while the stream is full.
func (m *Monitor) Run(ctx context.Context) {
	var whole time.Time // the last look that included the consumer
	failing := false
	for {
		withConsumer := time.Since(whole) >= m.o.Every
		err := m.look(ctx, withConsumer)
		if ctx.Err() != nil {
			return
		}
		switch {
		case err != nil && !failing:
			// NATS being down is logged by the connection already.
			m.log.Debug("cannot look at the stream", "stream", Name, "err", err)
			failing = true
		case err == nil:
			failing = false
			if withConsumer {
				whole = time.Now()
			}
		}
		wait := m.o.Every
		if m.Full() != nil {
			wait = m.o.FullEvery
		}
		if !m.sleep(ctx, wait) {
			return
		}
	}
}

// sleep waits d, or FullEvery from a refusal if that comes first. It returns false when ctx
// ended.
func (m *Monitor) sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	case <-m.wake:
		t.Reset(m.o.FullEvery)
	}
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// look reads the stream's state, and the consumer's when withConsumer (else it keeps what
// the last look found of it), and records them.
func (m *Monitor) look(ctx context.Context, withConsumer bool) error {
	ctx, cancel := context.WithTimeout(ctx, m.o.Every)
	defer cancel()
	began := time.Now()
	s, err := m.js.Stream(ctx, Name) // one stream info request
	if err != nil {
		return fmt.Errorf("look up stream %s: %w", Name, err)
	}
	snap := &Snapshot{At: time.Now(), Stream: s, Info: s.CachedInfo()}
	if !withConsumer {
		m.mu.Lock()
		if m.last != nil {
			snap.Consumer, snap.Oldest = m.last.Consumer, m.last.Oldest
		}
		m.mu.Unlock()
		m.record(snap, began)
		return nil
	}
	c, err := s.Consumer(ctx, m.o.Consumer) // one consumer info request
	switch {
	case errors.Is(err, jetstream.ErrConsumerNotFound):
	case err != nil:
		return fmt.Errorf("look up consumer %s: %w", m.o.Consumer, err)
	default:
		snap.Consumer = c.CachedInfo()
		snap.Oldest, err = oldestUnacked(ctx, s, snap.Info.State, snap.Consumer.AckFloor.Stream)
		if err != nil {
			return err
		}
	}
	m.record(snap, began)
	if m.o.Observe != nil && snap.Consumer != nil {
		m.o.Observe(ctx, snap)
	}
	return nil
}

// oldestUnacked returns the stored time of the first message above ackFloor, zero when
// there is none. It asks for the message only when the stream state does not tell.
func oldestUnacked(ctx context.Context, s jetstream.Stream, st jetstream.StreamState, ackFloor uint64) (time.Time, error) {
	seq := max(ackFloor+1, st.FirstSeq)
	switch {
	case st.Msgs == 0 || seq > st.LastSeq:
		return time.Time{}, nil
	case seq == st.FirstSeq:
		return st.FirstTime, nil
	case seq == st.LastSeq:
		return st.LastTime, nil
	}
	// The next message from seq on: seq itself may have been deleted.
	msg, err := s.GetMsg(ctx, seq, jetstream.WithGetMsgSubject(Subjects))
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return time.Time{}, nil // gone since the state was read
	}
	if err != nil {
		return time.Time{}, fmt.Errorf("read message %d of stream %s: %w", seq, Name, err)
	}
	return msg.Time, nil
}

// record keeps snap, a look that began at began, as the last look and decides whether the
// stream is full.
func (m *Monitor) record(snap *Snapshot, began time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.last = snap
	if err := fullness(snap.Info, max(m.need, 1)); err != nil {
		if m.full == nil {
			m.log.Warn("stream full: new messages are refused until there is room", "stream", Name, "err", err)
		}
		m.full = err
		return
	}
	if m.full != nil && began.Before(m.refusedAt) {
		return // the stream as it was before the refusal: the next look decides
	}
	if m.full != nil {
		m.log.Info("stream has room again", "stream", Name, "bytes", snap.Info.State.Bytes, "max_bytes", snap.Info.Config.MaxBytes)
	}
	m.full, m.need = nil, 0
}

// fullness returns ErrFull, with the numbers, when the stream described by info refuses a
// message of need bytes; nil when it takes it, and always for a stream that discards old
// messages instead (one that an operator manages, KOHAKU_MANAGE_STREAM=false).
func fullness(info *jetstream.StreamInfo, need int64) error {
	cfg, st := info.Config, info.State
	switch {
	case cfg.Discard != jetstream.DiscardNew:
		return nil
	case cfg.MaxBytes > 0 && int64(st.Bytes)+need > cfg.MaxBytes:
		return fmt.Errorf("%w: %d of %d bytes used, no room for %d", ErrFull, st.Bytes, cfg.MaxBytes, need)
	case cfg.MaxMsgs > 0 && int64(st.Msgs) >= cfg.MaxMsgs:
		return fmt.Errorf("%w: %d of %d messages", ErrFull, st.Msgs, cfg.MaxMsgs)
	}
	return nil
}

// Refused records that the stream refused a message of size bytes (StoredSize) as full
// (IsFull): Full fails from now until a look finds room for such a message, and the next
// look comes within FullEvery.
func (m *Monitor) Refused(size int64) {
	m.mu.Lock()
	m.need = max(m.need, size)
	m.refusedAt = time.Now()
	if m.full == nil {
		m.full = fmt.Errorf("%w: a message of %d bytes was refused", ErrFull, size)
		m.log.Warn("stream full: new messages are refused until there is room", "stream", Name, "err", m.full)
	}
	m.mu.Unlock()
	select {
	case m.wake <- struct{}{}:
	default: // a look is due soon anyway
	}
}

// Full returns an error wrapping ErrFull while the stream is full, nil otherwise (also
// before the first look).
func (m *Monitor) Full() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.full
}

// Last returns the last successful look, nil before the first.
func (m *Monitor) Last() *Snapshot {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.last
}

// series are the descriptions of the Monitor's series. Alert rules use these names: keep
// them.
type series struct {
	bytes, maxBytes, messages, maxMessages, oldest *prometheus.Desc
}

func newSeries() series {
	return series{
		bytes: prometheus.NewDesc("kohaku_stream_bytes",
			"Bytes stored in the KOHAKU stream, as last looked at (every few seconds).", nil, nil),
		maxBytes: prometheus.NewDesc("kohaku_stream_max_bytes",
			"The stream's MaxBytes (KOHAKU_STREAM_MAX_BYTES); -1 when unlimited, as JetStream reports it. Full, the stream refuses new messages and receivers answer 503.", nil, nil),
		messages: prometheus.NewDesc("kohaku_stream_messages",
			"Messages stored in the KOHAKU stream, as last looked at.", nil, nil),
		maxMessages: prometheus.NewDesc("kohaku_stream_max_messages",
			"The stream's MaxMsgs; -1 when unlimited, as JetStream reports it (Kohaku sets no such limit).", nil, nil),
		oldest: prometheus.NewDesc("kohaku_stream_oldest_unacked_age_seconds",
			"Age of the oldest message of the stream that the kohaku-writer consumer has not acknowledged (written), from the time JetStream stored it; 0 when there is none. Absent while the consumer does not exist.", nil, nil),
	}
}

// Describe sends the descriptions of the stream series.
func (m *Monitor) Describe(ch chan<- *prometheus.Desc) {
	d := m.series
	for _, d := range []*prometheus.Desc{d.bytes, d.maxBytes, d.messages, d.maxMessages, d.oldest} {
		ch <- d
	}
}

// Collect sends the stream series as the last look found them: nothing before the first
// look, nor when the last successful one is more than three periods old (NATS
// unreachable), so that stale values raise no alert and hide no outage. The age grows
// between looks.
func (m *Monitor) Collect(ch chan<- prometheus.Metric) {
	snap := m.Last()
	if snap == nil || time.Since(snap.At) > 3*m.o.Every {
		return
	}
	gauge := func(d *prometheus.Desc, v float64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v)
	}
	cfg, st := snap.Info.Config, snap.Info.State
	gauge(m.series.bytes, float64(st.Bytes))
	gauge(m.series.maxBytes, float64(cfg.MaxBytes))
	gauge(m.series.messages, float64(st.Msgs))
	gauge(m.series.maxMessages, float64(cfg.MaxMsgs))
	if snap.Consumer != nil {
		age := 0.0
		if !snap.Oldest.IsZero() {
			age = max(0, time.Since(snap.Oldest).Seconds())
		}
		gauge(m.series.oldest, age)
	}
}
