package ingest

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"kohaku/pkg/config"
	"kohaku/pkg/normalize"
	"kohaku/pkg/stream"
	"kohaku/writer/internal/store"
	"kohaku/writer/internal/writertest"
)

// emptyObjects returns body with n empty objects as its stats: n rows in rtc_other_stats
// from about 3n bytes, the most rows a body of its size can give.
func emptyObjects(t testing.TB, body []byte, n int) []byte {
	t.Helper()
	var m map[string]json.RawMessage
	if err := json.Unmarshal(body, &m); err != nil {
		t.Fatal(err)
	}
	m["stats"] = json.RawMessage("[" + strings.TrimSuffix(strings.Repeat("{},", n), ",") + "]")
	out, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestCollectorKeepsBounds collects batches of real messages with small bounds and checks
// that every batch keeps within them, unless it is one message alone, that a batch ends
// only when the next message would take it beyond a bound, and that the batches hold every
// message once, in stream order, decoded.
func TestCollectorKeepsBounds(t *testing.T) {
	msgs := writertest.Messages(t, 40)
	// A body beyond both bounds, and one beyond the rows bound only, among the others.
	msgs[7].Body = emptyObjects(t, msgs[7].Body, 50_000)
	msgs[21].Body = emptyObjects(t, msgs[21].Body, 500)
	rows := make([]int, len(msgs))
	for i, m := range msgs {
		r, err := normalize.Message(m.ExporterType, m.Body)
		if err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
		rows[i] = r.Count
	}
	tests := []struct {
		name string
		b    bounds
	}{
		{"messages", bounds{messages: 3, bytes: 64 << 20, rows: 1 << 20}},
		{"bytes", bounds{messages: 1000, bytes: 64 << 10, rows: 1 << 20}},
		{"rows", bounds{messages: 1000, bytes: 64 << 20, rows: 100}},
		{"all", bounds{messages: 8, bytes: 64 << 10, rows: 300}},
	}
	js := writertest.NewJetStream(t)
	for _, m := range msgs {
		js.Publish(t, m)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Longer than pulling the stream takes: every batch but the last ends by a bound.
			tt.b.wait = time.Second
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			cons, err := js.JS.CreateOrUpdateConsumer(ctx, stream.Name, jetstream.ConsumerConfig{
				Durable: "collect-" + tt.name, AckPolicy: jetstream.AckExplicitPolicy,
			})
			if err != nil {
				t.Fatal(err)
			}
			o := Options{BatchMaxBytes: tt.b.bytes}
			it, err := cons.Messages(o.pullOptions(js.Conn)...)
			if err != nil {
				t.Fatal(err)
			}
			defer it.Stop()
			c := &collector{it: it, b: tt.b}
			next := 0 // index in msgs of the next message expected
			for batches := 0; next < len(msgs); batches++ {
				b, err := c.next(ctx)
				if err != nil {
					t.Fatalf("batch %d: %v", batches, err)
				}
				if len(b.items) != len(b.msgs) {
					t.Fatalf("batch %d: %d messages, %d decoded", batches, len(b.msgs), len(b.items))
				}
				gotRows, gotBytes := 0, 0
				for i, m := range b.msgs {
					meta, err := m.Metadata()
					if err != nil {
						t.Fatal(err)
					}
					if int(meta.Sequence.Stream) != next+1 || b.items[i].Seq != meta.Sequence.Stream {
						t.Fatalf("batch %d: message %d has sequence %d (decoded %d), want %d",
							batches, i, meta.Sequence.Stream, b.items[i].Seq, next+1)
					}
					if b.items[i].Rows == nil || b.items[i].Rows.Count != rows[next] {
						t.Fatalf("batch %d: message %d not decoded to its %d rows: %+v", batches, i, rows[next], b.items[i].Err)
					}
					gotRows += rows[next]
					gotBytes += len(msgs[next].Body)
					next++
				}
				if gotRows != b.rows || gotBytes != b.bytes {
					t.Errorf("batch %d: counts %d rows and %d bytes, holds %d and %d", batches, b.rows, b.bytes, gotRows, gotBytes)
				}
				if len(b.msgs) > 1 && (len(b.msgs) > tt.b.messages || b.bytes > tt.b.bytes || b.rows > tt.b.rows) {
					t.Errorf("batch %d: %d messages, %d bytes, %d rows: beyond the bounds %+v", batches, len(b.msgs), b.bytes, b.rows, tt.b)
				}
				if next < len(msgs) && len(b.msgs) < tt.b.messages && b.bytes+len(msgs[next].Body) <= tt.b.bytes && b.rows+rows[next] <= tt.b.rows {
					t.Errorf("batch %d ended with %d messages, %d bytes, %d rows, although the next message (%d bytes, %d rows) fits in %+v",
						batches, len(b.msgs), b.bytes, b.rows, len(msgs[next].Body), rows[next], tt.b)
				}
				for _, m := range b.msgs {
					m.Ack()
				}
			}
			if c.held != nil {
				t.Errorf("the collector holds a message after the last")
			}
		})
	}
}

// TestMessagesBeyondTheBoundsAreStored runs a Consumer with the smallest bounds over
// messages that exceed them, one by nearly the NATS server's max payload: the pull buffer
// must still take it, and each is written alone.
func TestMessagesBeyondTheBoundsAreStored(t *testing.T) {
	url := writertest.Database(t)
	pool := writertest.Pool(t, url)
	js := writertest.NewJetStream(t)
	msgs := writertest.Messages(t, 30)
	maxPayload := int(js.Conn.MaxPayload())
	// All but the headers' room, in white space: what is large is the message, not its rows.
	body := bytes.TrimSuffix(bytes.TrimSpace(msgs[3].Body), []byte("}"))
	msgs[3].Body = append(append(body, bytes.Repeat([]byte(" "), maxPayload-4096-len(body))...), '}')
	msgs[17].Body = emptyObjects(t, msgs[17].Body, 2000)
	if n := len(msgs[3].Body); n < maxPayload*9/10 || n > maxPayload-1024 {
		t.Fatalf("the largest body has %d bytes, want just under the max payload %d", n, maxPayload)
	}
	for _, i := range []int{3, 17} {
		if _, err := normalize.Message(msgs[i].ExporterType, msgs[i].Body); err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
	}
	want := writertest.Expect(t, msgs)
	for _, m := range msgs {
		js.Publish(t, m)
	}
	o := Options{BatchMaxBytes: minBatchBytes, BatchMaxRows: 100, BatchWait: 50 * time.Millisecond}
	if err := config.Defaults(&o); err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	log := writertest.Logger(t)
	c, err := New(js.JS, store.New(pool, log, reg), o, log, reg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	writertest.WaitCounts(t, pool, want, 60*time.Second)
}
