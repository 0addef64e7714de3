package ingest_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"kohaku/pkg/config"
	"kohaku/pkg/normalize"
	"kohaku/pkg/stream"
	"kohaku/testsupport/dbtest"
	"kohaku/testsupport/fixtures"
	"kohaku/testsupport/testenv"
	"kohaku/writer/internal/ingest"
	"kohaku/writer/internal/store"
	"kohaku/writer/internal/writertest"
)

// env is what a test of the consumer runs against: a migrated database and an embedded
// JetStream with the stream.
type env struct {
	url  string
	pool *pgxpool.Pool
	js   *writertest.JetStream
}

func newEnv(t *testing.T) *env {
	t.Helper()
	url := writertest.Database(t)
	return &env{url: url, pool: writertest.Pool(t, url), js: writertest.NewJetStream(t)}
}

// writer is one running Consumer.
type writer struct {
	c    *ingest.Consumer
	reg  *prometheus.Registry
	done chan error
}

// start runs a Consumer with o, its zero fields at their defaults, (a fresh registry and
// the test's logger) until the test ends, then stops it and checks that Run returned nil.
func (e *env) start(t *testing.T, o ingest.Options) *writer {
	t.Helper()
	w := &writer{reg: prometheus.NewRegistry(), done: make(chan error, 1)}
	defaults(t, &o)
	log := writertest.Logger(t)
	st := store.New(e.pool, log, w.reg)
	c, err := ingest.New(e.js.JS, st, o, log, w.reg)
	if err != nil {
		t.Fatalf("ingest.New: %v", err)
	}
	w.c = c
	ctx, cancel := context.WithCancel(context.Background())
	go func() { w.done <- c.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-w.done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Errorf("Run did not return after its context ended")
		}
	})
	return w
}

// defaults sets the zero fields of the options that o points to from their default tags, as
// the writer's environment would.
func defaults(t testing.TB, o any) {
	t.Helper()
	if err := config.Defaults(o); err != nil {
		t.Fatal(err)
	}
}

// publish publishes msgs and returns their stream sequences.
func (e *env) publish(t *testing.T, msgs []writertest.Message) []uint64 {
	t.Helper()
	seqs := make([]uint64, len(msgs))
	for i, m := range msgs {
		seqs[i] = e.js.Publish(t, m)
	}
	return seqs
}

// waitSettled waits until the durable consumer has delivered every message and has none
// unacknowledged.
func (e *env) waitSettled(t *testing.T, durable string) {
	t.Helper()
	testenv.Eventually(t, 60*time.Second, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		cons, err := e.js.JS.Consumer(ctx, stream.Name, durable)
		if err != nil {
			return err
		}
		info, err := cons.Info(ctx)
		if err != nil {
			return err
		}
		if info.NumPending != 0 || info.NumAckPending != 0 {
			return fmt.Errorf("consumer %s: %d pending, %d unacknowledged", durable, info.NumPending, info.NumAckPending)
		}
		return nil
	})
}

func fixtureCount(t *testing.T) int {
	t.Helper()
	all, err := fixtures.All()
	if err != nil {
		t.Fatal(err)
	}
	return len(all)
}

func TestEveryFixtureBecomesItsRows(t *testing.T) {
	e := newEnv(t)
	msgs := writertest.Messages(t, 3*fixtureCount(t))
	want := writertest.Expect(t, msgs)
	if want["kohaku_dead_letter"] != 0 {
		t.Fatalf("fixtures that normalize rejects: %d", want["kohaku_dead_letter"])
	}
	e.publish(t, msgs)
	w := e.start(t, ingest.Options{BatchSize: 10, BatchWait: 50 * time.Millisecond})
	writertest.WaitCounts(t, e.pool, want, 60*time.Second)
	e.waitSettled(t, stream.Consumer)

	// sora_connection spans each connection's messages.
	rows, err := e.pool.Query(context.Background(), `SELECT c.connection_id, c.first_seen = min(s.time), c.last_seen = max(s.time)
FROM sora_connection c JOIN rtc_peer_connection_stats s USING (connection_id)
GROUP BY c.connection_id, c.first_seen, c.last_seen`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	n := 0
	for rows.Next() {
		var id string
		var first, last bool
		if err := rows.Scan(&id, &first, &last); err != nil {
			t.Fatal(err)
		}
		if !first || !last {
			t.Errorf("sora_connection %s: first_seen matches: %v, last_seen matches: %v", id, first, last)
		}
		n++
	}
	if n != want["sora_connection"] {
		t.Errorf("connections with peer-connection stats: got %d, want %d", n, want["sora_connection"])
	}
	if got := writertest.Metric(t, w.reg, "kohaku_writer_messages_total"); got != float64(len(msgs)) {
		t.Errorf("kohaku_writer_messages_total = %v, want %d", got, len(msgs))
	}
	if got, want := writertest.Metric(t, w.reg, "kohaku_writer_rows_total"), want.Total(); got != float64(want) {
		t.Errorf("kohaku_writer_rows_total = %v, want %d", got, want)
	}
}

func TestSameMessageTwiceKeepsCounts(t *testing.T) {
	tests := []struct {
		name     string
		batch    int
		separate bool // second copies published after the first were stored
	}{
		{name: "in the same batch", batch: 100},
		{name: "in later batches", batch: 5, separate: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			msgs := writertest.Messages(t, 2*fixtureCount(t))
			want := writertest.Expect(t, msgs)
			e.publish(t, msgs)
			again := func() {
				// Another Nats-Msg-Id: JetStream stores the body again, as it would a
				// request that Sora retried after the duplicate window.
				for i, m := range msgs {
					e.js.PublishID(t, m, fmt.Sprintf("again-%d", i))
				}
			}
			if !tt.separate {
				again()
			}
			w := e.start(t, ingest.Options{BatchSize: tt.batch, BatchWait: 100 * time.Millisecond})
			if tt.separate {
				writertest.WaitCounts(t, e.pool, want, 60*time.Second)
				e.waitSettled(t, stream.Consumer)
				again()
			}
			e.waitSettled(t, stream.Consumer)
			writertest.WaitCounts(t, e.pool, want, 5*time.Second)
			if writertest.Metric(t, w.reg, "kohaku_writer_duplicate_rows_total") == 0 {
				t.Error("kohaku_writer_duplicate_rows_total is 0: the second copies were not written at all")
			}
		})
	}
}

// TestConcurrentBatchesStoreOnce drains a backlog with batches written on two connections
// at once, every message of the second case published twice so that the same rows are in
// batches written at the same time: each row is stored once, and nothing is left
// unacknowledged.
func TestConcurrentBatchesStoreOnce(t *testing.T) {
	tests := []struct {
		name  string
		twice bool
	}{
		{name: "backlog"},
		{name: "each message twice, in concurrent batches", twice: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			msgs := writertest.Messages(t, 10*fixtureCount(t))
			want := writertest.Expect(t, msgs)
			for i, m := range msgs {
				e.js.Publish(t, m)
				if tt.twice {
					// Another Nats-Msg-Id, right behind: the copy lands in the same
					// batch or the next, which the other connection writes meanwhile.
					e.js.PublishID(t, m, fmt.Sprintf("again-%d", i))
				}
			}
			w := e.start(t, ingest.Options{BatchSize: 5, BatchWait: 20 * time.Millisecond, WriteConnections: 2})
			writertest.WaitCounts(t, e.pool, want, 60*time.Second)
			e.waitSettled(t, stream.Consumer)
			writertest.WaitCounts(t, e.pool, want, time.Second)
			n := len(msgs)
			if tt.twice {
				n *= 2
				if writertest.Metric(t, w.reg, "kohaku_writer_duplicate_rows_total") == 0 {
					t.Error("kohaku_writer_duplicate_rows_total is 0: the second copies were not written at all")
				}
			}
			if got := writertest.Metric(t, w.reg, "kohaku_writer_messages_total"); got != float64(n) {
				t.Errorf("kohaku_writer_messages_total = %v, want %d", got, n)
			}
		})
	}
}

func TestReplay(t *testing.T) {
	e := newEnv(t)
	first := writertest.Messages(t, 2*fixtureCount(t))
	e.publish(t, first)
	mid := time.Now()
	// Second half: other messages, later in the stream.
	second := writertest.Messages(t, 4*fixtureCount(t))[len(first):]
	e.publish(t, second)
	all := append(append([]writertest.Message{}, first...), second...)
	e.start(t, ingest.Options{BatchSize: 20})
	writertest.WaitCounts(t, e.pool, writertest.Expect(t, all), 60*time.Second)
	e.waitSettled(t, stream.Consumer)

	start := mid.Add(-time.Hour)
	tests := []struct {
		name      string
		fresh     bool // replay into an empty database, as restored from an old backup
		until     time.Time
		want      []writertest.Message
		wantNew   bool
		wantCount int
	}{
		{name: "over a stored period", want: all, wantCount: len(all)},
		{name: "into an empty database", fresh: true, want: all, wantNew: true, wantCount: len(all)},
		{name: "up to a time", fresh: true, until: mid, want: first, wantNew: true, wantCount: len(first)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pool := e.pool
			if tt.fresh {
				pool = writertest.Pool(t, writertest.Database(t))
			}
			st := store.New(pool, writertest.Logger(t), prometheus.NewRegistry())
			var progress lines
			o := ingest.ReplayOptions{Options: ingest.Options{BatchSize: 7}, Since: start, Until: tt.until,
				Progress: &progress, ProgressEvery: 5 * time.Millisecond}
			defaults(t, &o)
			stats, err := ingest.Replay(context.Background(), e.js.JS, st, o, writertest.Logger(t))
			if err != nil {
				t.Fatalf("Replay: %v", err)
			}
			if stats.Messages != tt.wantCount {
				t.Errorf("replayed %d messages, want %d", stats.Messages, tt.wantCount)
			}
			if got := stats.NewRows > 0; got != tt.wantNew {
				t.Errorf("replay added %d rows; want new rows: %v", stats.NewRows, tt.wantNew)
			}
			if len(progress) == 0 {
				t.Error("no progress line")
			}
			// The first line comes at the start: all of the period is left.
			if want := fmt.Sprintf(", %d left", tt.wantCount); len(progress) > 0 && !strings.Contains(progress[0], want) {
				t.Errorf("first progress line %q, want %q in it", progress[0], want)
			}
			// Written and left add up to the period on every line, although the pipeline
			// pulls ahead of what it has written.
			for _, l := range progress {
				m := progressLine.FindStringSubmatch(l)
				if m == nil {
					t.Errorf("progress line %q", l)
					continue
				}
				done, _ := strconv.Atoi(m[1])
				left, _ := strconv.Atoi(m[2])
				if done+left != tt.wantCount {
					t.Errorf("progress line %q: %d written and %d left, want %d in all", l, done, left, tt.wantCount)
				}
			}
			if want := fmt.Sprintf("replay: %d messages, ", tt.wantCount); !strings.HasPrefix(stats.Summary(), want) {
				t.Errorf("summary %q, want it to start with %q", stats.Summary(), want)
			}
			if from, to := envelopeSpan(t, tt.want); !stats.RowsFrom.Equal(from) || !stats.RowsTo.Equal(to) {
				t.Errorf("replayed rows span %s to %s, want %s to %s", stats.RowsFrom, stats.RowsTo, from, to)
			}
			writertest.WaitCounts(t, pool, writertest.Expect(t, tt.want), time.Second)
		})
	}

	t.Run("nothing in the period", func(t *testing.T) {
		st := store.New(e.pool, writertest.Logger(t), prometheus.NewRegistry())
		o := ingest.ReplayOptions{Since: start, Until: start.Add(time.Minute)}
		defaults(t, &o)
		stats, err := ingest.Replay(context.Background(), e.js.JS, st, o, nil)
		if err != nil || stats.Messages != 0 {
			t.Errorf("Replay = %+v, %v; want nothing done", stats, err)
		}
	})

	t.Run("nothing since", func(t *testing.T) {
		st := store.New(e.pool, writertest.Logger(t), prometheus.NewRegistry())
		o := ingest.ReplayOptions{Since: time.Now().Add(time.Hour)}
		defaults(t, &o)
		stats, err := ingest.Replay(context.Background(), e.js.JS, st, o, nil)
		if err != nil || stats.Messages != 0 {
			t.Errorf("Replay = %+v, %v; want nothing done", stats, err)
		}
	})
}

// envelopeSpan returns the earliest and latest envelope timestamp of msgs: the row times.
func envelopeSpan(t *testing.T, msgs []writertest.Message) (from, to time.Time) {
	t.Helper()
	for _, m := range msgs {
		var env struct {
			Timestamp time.Time `json:"timestamp"`
		}
		if err := json.Unmarshal(m.Body, &env); err != nil {
			t.Fatalf("decode envelope: %v", err)
		}
		if from.IsZero() || env.Timestamp.Before(from) {
			from = env.Timestamp
		}
		if env.Timestamp.After(to) {
			to = env.Timestamp
		}
	}
	return from, to
}

// progressLine matches a replay progress line, capturing the messages written and left.
var progressLine = regexp.MustCompile(`^replay: (\d+) messages, \d+ rows \(\d+ already present\), \d+ dead letters, \d+ msg/s, (\d+) left`)

// lines collects progress lines.
type lines []string

func (l *lines) Write(p []byte) (int, error) {
	*l = append(*l, string(p))
	return len(p), nil
}

// TestDatabaseOutage blocks the database while the writer drains, with one connection and
// with batches written on two at once: the writer stays up, not ready, holds its batches,
// and stores every message exactly once after the database is back.
func TestDatabaseOutage(t *testing.T) {
	tests := []struct {
		name        string
		connections int
	}{
		{name: "one connection", connections: 1},
		{name: "two connections", connections: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			msgs := writertest.Messages(t, 8*fixtureCount(t))
			before, during := msgs[:len(msgs)/2], msgs[len(msgs)/2:]
			// A short AckWait: the outage outlasts it, so the held batch must be kept alive
			// with InProgress and buffered messages come again.
			w := e.start(t, ingest.Options{BatchSize: 10, AckWait: 2 * time.Second, RetryMax: 300 * time.Millisecond, WriteConnections: tt.connections})
			e.publish(t, before)
			writertest.WaitCounts(t, e.pool, writertest.Expect(t, before), 60*time.Second)

			dbtest.BlockDatabase(t, e.url)
			blocked := time.Now()
			// Messages keep arriving while the database is away.
			e.publish(t, during)
			// The outage outlasts AckWait: the held batch must be kept alive meanwhile, and the
			// writer must stay up and report itself not ready all along.
			testenv.Eventually(t, 20*time.Second, func() error {
				select {
				case err := <-w.done:
					t.Fatalf("Run returned during the outage: %v", err)
				default:
				}
				if w.c.Ready(context.Background()) == nil {
					return errors.New("writer still ready while its database refuses connections")
				}
				if writertest.Metric(t, w.reg, "kohaku_writer_stalled") != 1 {
					return errors.New("writer not stalled yet")
				}
				if time.Since(blocked) < 3*time.Second {
					return errors.New("outage not longer than AckWait yet")
				}
				return nil
			})
			if up := writertest.Metric(t, w.reg, "kohaku_writer_database_up"); up != 0 {
				t.Errorf("kohaku_writer_database_up = %v during the outage, want 0", up)
			}

			dbtest.AllowDatabase(t, e.url)
			writertest.WaitCounts(t, e.pool, writertest.Expect(t, msgs), 60*time.Second)
			e.waitSettled(t, stream.Consumer)
			testenv.Eventually(t, 5*time.Second, func() error { return w.c.Ready(context.Background()) })
			select {
			case err := <-w.done:
				t.Fatalf("Run returned: %v", err)
			default:
			}
		})
	}
}

func TestPoisonMessageIsDeadLettered(t *testing.T) {
	e := newEnv(t)
	msgs := writertest.Messages(t, 2*fixtureCount(t))
	poison := writertest.Message{ExporterType: "connection.user-agent", Body: []byte(`{"type": "connection.user-agent", "stats": [`)}
	seqs := e.publish(t, msgs[:len(msgs)/2])
	bad := e.js.Publish(t, poison)
	e.publish(t, msgs[len(msgs)/2:])
	_ = seqs

	w := e.start(t, ingest.Options{BatchSize: 100, BatchWait: 300 * time.Millisecond})
	want := writertest.Expect(t, msgs)
	want["kohaku_dead_letter"] = 1
	writertest.WaitCounts(t, e.pool, want, 60*time.Second)
	e.waitSettled(t, stream.Consumer)

	var seq int64
	var subject, reason string
	var body []byte
	err := e.pool.QueryRow(context.Background(), "SELECT stream_seq, subject, body, error FROM kohaku_dead_letter").Scan(&seq, &subject, &body, &reason)
	if err != nil {
		t.Fatal(err)
	}
	if uint64(seq) != bad || subject != stream.Subject(poison.ExporterType) || string(body) != string(poison.Body) || reason == "" {
		t.Errorf("dead letter = seq %d, subject %q, body %q, error %q; want seq %d, subject %q, the body and a reason",
			seq, subject, body, reason, bad, stream.Subject(poison.ExporterType))
	}
	if got := writertest.Metric(t, w.reg, "kohaku_writer_dead_letters_total"); got != 1 {
		t.Errorf("kohaku_writer_dead_letters_total = %v, want 1", got)
	}

	// The consumer moves on.
	more := writertest.Messages(t, 3*fixtureCount(t))[len(msgs):]
	e.publish(t, more)
	want = writertest.Expect(t, append(append([]writertest.Message{}, msgs...), more...))
	want["kohaku_dead_letter"] = 1
	writertest.WaitCounts(t, e.pool, want, 60*time.Second)
	e.waitSettled(t, stream.Consumer)
}

func TestTwoWritersShareTheConsumer(t *testing.T) {
	e := newEnv(t)
	msgs := writertest.Messages(t, 20*fixtureCount(t))
	o := ingest.Options{BatchSize: 15, BatchWait: 20 * time.Millisecond}
	w1, w2 := e.start(t, o), e.start(t, o)
	// Some messages twice, so that both writers may write the same rows at once.
	for i, m := range msgs {
		e.js.Publish(t, m)
		if i%5 == 0 {
			e.js.PublishID(t, m, fmt.Sprintf("again-%d", i))
		}
	}
	writertest.WaitCounts(t, e.pool, writertest.Expect(t, msgs), 60*time.Second)
	e.waitSettled(t, stream.Consumer)
	for i, w := range []*writer{w1, w2} {
		if n := writertest.Metric(t, w.reg, "kohaku_writer_messages_total"); n == 0 {
			t.Errorf("writer %d stored no message: the consumer was not shared", i+1)
		}
		if n := writertest.Metric(t, w.reg, "kohaku_writer_flush_errors_total"); n != 0 {
			t.Errorf("writer %d: %v failed writes (deadlocks?)", i+1, n)
		}
	}
}

func TestJetStreamRestart(t *testing.T) {
	e := newEnv(t)
	msgs := writertest.Messages(t, 4*fixtureCount(t))
	before, after := msgs[:len(msgs)/2], msgs[len(msgs)/2:]
	w := e.start(t, ingest.Options{BatchSize: 10})
	e.publish(t, before)
	writertest.WaitCounts(t, e.pool, writertest.Expect(t, before), 60*time.Second)

	e.js.Server.Shutdown()
	testenv.Eventually(t, 10*time.Second, func() error {
		if w.c.Ready(context.Background()) == nil {
			return errors.New("writer still ready without JetStream")
		}
		return nil
	})
	if err := e.js.Server.Restart(); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 30*time.Second, func() error {
		if !e.js.Conn.IsConnected() {
			return errors.New("test client not connected again yet")
		}
		return nil
	})
	e.publish(t, after)
	writertest.WaitCounts(t, e.pool, writertest.Expect(t, msgs), 60*time.Second)
	e.waitSettled(t, stream.Consumer)
}

// TestRedeliveryAfterAckWait plays a writer that committed a batch and died before its acks
// went out: the messages come again after AckWait, and storing them again adds nothing.
func TestRedeliveryAfterAckWait(t *testing.T) {
	e := newEnv(t)
	msgs := writertest.Messages(t, 2*fixtureCount(t))
	want := writertest.Expect(t, msgs)
	e.publish(t, msgs)

	ctx := context.Background()
	o := ingest.Options{BatchSize: 50, AckWait: time.Second}
	cons, err := e.js.JS.CreateOrUpdateConsumer(ctx, stream.Name, jetstream.ConsumerConfig{
		Durable: stream.Consumer, AckPolicy: jetstream.AckExplicitPolicy, AckWait: o.AckWait, MaxDeliver: -1,
	})
	if err != nil {
		t.Fatal(err)
	}
	fetched, err := cons.Fetch(len(msgs), jetstream.FetchMaxWait(10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	var items []store.Message
	for m := range fetched.Messages() {
		meta, err := m.Metadata()
		if err != nil {
			t.Fatal(err)
		}
		typ := m.Headers().Get(stream.HeaderExporterType)
		rows, err := normalize.Message(typ, m.Data())
		if err != nil {
			t.Fatal(err)
		}
		items = append(items, store.Message{Seq: meta.Sequence.Stream, Subject: m.Subject(), ExporterType: typ, Body: m.Data(), Rows: rows})
	}
	if len(items) != len(msgs) {
		t.Fatalf("fetched %d messages, want %d", len(items), len(msgs))
	}
	if _, err := store.New(e.pool, writertest.Logger(t), prometheus.NewRegistry()).Write(ctx, items); err != nil {
		t.Fatal(err)
	}
	writertest.WaitCounts(t, e.pool, want, time.Second)
	// No ack: after AckWait, JetStream delivers every message again, to the writer.

	w := e.start(t, o)
	e.waitSettled(t, stream.Consumer)
	writertest.WaitCounts(t, e.pool, want, time.Second)
	if got := writertest.Metric(t, w.reg, "kohaku_writer_redeliveries_total"); got != float64(len(msgs)) {
		t.Errorf("kohaku_writer_redeliveries_total = %v, want %d", got, len(msgs))
	}
}
