// Package writertest gives the writer's tests what they share: a migrated database, an
// embedded JetStream with the KOHAKU stream, fixture messages published as the receiver
// publishes them, and the row counts those messages must produce.
package writertest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"kohaku/pkg/normalize"
	"kohaku/pkg/stream"
	"kohaku/testsupport/fixtures"
	"kohaku/testsupport/testenv"
)

// Pool returns a pool on url, closed when the test ends.
func Pool(t testing.TB, url string) *pgxpool.Pool {
	t.Helper()
	pool, err := pgxpool.New(context.Background(), url)
	if err != nil {
		t.Fatalf("pool: %v", err)
	}
	t.Cleanup(pool.Close)
	return pool
}

// JetStream is an embedded JetStream server with the KOHAKU stream and a client of it.
type JetStream struct {
	Server *testenv.NATSServer
	Conn   *nats.Conn
	JS     jetstream.JetStream
}

// NewJetStream starts an embedded JetStream server for the test, creates the stream with
// the default configuration and connects to it.
func NewJetStream(t testing.TB) *JetStream {
	t.Helper()
	ns := testenv.NATS(t)
	// Reconnect forever: tests restart the server to make an outage.
	j := connect(t, ns.URL(), nats.MaxReconnects(-1))
	j.Server = ns
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := stream.Ensure(ctx, j.JS, stream.DefaultConfig()); err != nil {
		t.Fatalf("create stream: %v", err)
	}
	return j
}

// Message is a request body as Sora sends it.
type Message struct {
	ExporterType string
	Body         []byte
}

// Publish publishes m as the receiver does: to its subject, with the receiver's headers and
// the deduplication id of its content, waiting for the PubAck. It returns the stream
// sequence.
func (j *JetStream) Publish(t testing.TB, m Message) uint64 {
	t.Helper()
	return j.PublishID(t, m, stream.MsgID(m.ExporterType, m.Body))
}

// PublishID is Publish with the deduplication id msgID: another id makes JetStream store
// the same body again, as a second delivery of one request.
func (j *JetStream) PublishID(t testing.TB, m Message, msgID string) uint64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ack, err := j.JS.PublishMsg(ctx, NATSMsg(m, msgID))
	if err != nil {
		t.Fatalf("publish %s: %v", m.ExporterType, err)
	}
	return ack.Sequence
}

// NATSMsg is m as the receiver publishes it, with the deduplication id msgID.
func NATSMsg(m Message, msgID string) *nats.Msg {
	msg := stream.NewMsg(m.ExporterType, m.Body, time.Now(), "writertest")
	msg.Header.Set(stream.HeaderMsgID, msgID) // PublishID's other id stores the body again
	return msg
}

// Messages returns n distinct messages made from the fixtures of both feeds, in rounds over
// all of them: round k moves each fixture's timestamp k*10s later (the fixtures of one
// connection span less than that), so every message has rows with keys of their own.
func Messages(t testing.TB, n int) []Message {
	t.Helper()
	all, err := fixtures.All()
	if err != nil {
		t.Fatalf("fixtures: %v", err)
	}
	hooks, err := fixtures.Webhooks()
	if err != nil {
		t.Fatalf("fixtures: %v", err)
	}
	all = append(all, hooks...)
	if len(all) == 0 {
		t.Fatal("no fixtures")
	}
	out := make([]Message, 0, n)
	for k := 0; len(out) < n; k++ {
		for _, f := range all {
			if len(out) == n {
				break
			}
			out = append(out, Message{ExporterType: f.ExporterType, Body: shift(t, f.Body, time.Duration(k)*10*time.Second)})
		}
	}
	return out
}

// shift returns body with its envelope timestamp d later; numbers are kept as written.
func shift(t testing.TB, body []byte, d time.Duration) []byte {
	t.Helper()
	if d == 0 {
		return body
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var env map[string]any
	if err := dec.Decode(&env); err != nil {
		t.Fatalf("decode fixture: %v", err)
	}
	ts, err := time.Parse(time.RFC3339Nano, env["timestamp"].(string))
	if err != nil {
		t.Fatalf("fixture timestamp: %v", err)
	}
	env["timestamp"] = ts.Add(d).UTC().Format("2006-01-02T15:04:05.000000Z")
	out, err := json.Marshal(env)
	if err != nil {
		t.Fatalf("encode fixture: %v", err)
	}
	return out
}

// Counts are row counts by table.
type Counts map[string]int

// Tables are the tables that Counts covers: every table the writer fills.
func Tables() []string {
	return append(normalize.StatsTables(), normalize.TableConnection, "kohaku_dead_letter")
}

// Expect returns the counts that storing msgs must give: what normalize.Message makes of
// them, one sora_connection row per connection, and a dead letter for each body that
// cannot be normalized and for each element that normalize sets apart.
func Expect(t testing.TB, msgs []Message) Counts {
	t.Helper()
	want := Counts{}
	for _, table := range Tables() {
		want[table] = 0
	}
	conns := map[string]bool{}
	for i, m := range msgs {
		rows, err := normalize.Message(m.ExporterType, m.Body)
		if err != nil {
			want["kohaku_dead_letter"]++
			continue
		}
		for table, rs := range rows.Tables {
			if _, ok := want[table]; !ok {
				t.Fatalf("message %d: rows for table %s, which StatsTables does not list", i, table)
			}
			want[table] += len(rs)
		}
		want["kohaku_dead_letter"] += len(rows.Rejected)
		if rows.Connection != nil {
			conns[rows.Connection.ConnectionID] = true
		}
	}
	want[normalize.TableConnection] = len(conns)
	return want
}

// Count returns the row count of every table in Tables.
func Count(ctx context.Context, pool *pgxpool.Pool) (Counts, error) {
	var b pgx.Batch
	tables := Tables()
	for _, table := range tables {
		b.Queue("SELECT count(*) FROM " + pgx.Identifier{table}.Sanitize())
	}
	br := pool.SendBatch(ctx, &b)
	defer br.Close()
	got := Counts{}
	for _, table := range tables {
		var n int
		if err := br.QueryRow().Scan(&n); err != nil {
			return nil, fmt.Errorf("count %s: %w", table, err)
		}
		got[table] = n
	}
	return got, nil
}

// Diff describes how got differs from c, "" when it does not.
func (c Counts) Diff(got Counts) string {
	var d []string
	for _, table := range slices.Sorted(maps.Keys(c)) {
		if got[table] != c[table] {
			d = append(d, fmt.Sprintf("%s: got %d rows, want %d", table, got[table], c[table]))
		}
	}
	return strings.Join(d, "; ")
}

// WaitCounts waits until pool's tables hold exactly want and fails the test when they do
// not within timeout. Counts above want fail at once: rows are never removed.
func WaitCounts(t testing.TB, pool *pgxpool.Pool, want Counts, timeout time.Duration) {
	t.Helper()
	testenv.Eventually(t, timeout, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		got, err := Count(ctx, pool)
		if err != nil {
			return err
		}
		for table, n := range got {
			if n > want[table] {
				t.Fatalf("%s holds %d rows, more than the %d expected: a message was stored twice", table, n, want[table])
			}
		}
		if d := want.Diff(got); d != "" {
			return fmt.Errorf("row counts: %s", d)
		}
		return nil
	})
}

// Total is the sum of c's counts.
func (c Counts) Total() int {
	n := 0
	for _, v := range c {
		n += v
	}
	return n
}

// Connect connects to the JetStream server at url, for a test that did not start it.
func Connect(t testing.TB, url string) *JetStream {
	t.Helper()
	return connect(t, url)
}

// connect connects to url with opts; the connection is closed when the test ends.
func connect(t testing.TB, url string, opts ...nats.Option) *JetStream {
	t.Helper()
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		t.Fatalf("connect to %s: %v", url, err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatalf("jetstream: %v", err)
	}
	return &JetStream{Conn: nc, JS: js}
}
