package ingest_test

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"kohaku/pkg/normalize"
	"kohaku/pkg/stream"
	"kohaku/writer/internal/ingest"
	"kohaku/writer/internal/store"
	"kohaku/writer/internal/writertest"
)

// BenchmarkWriterVsRawCopy drains a pre-filled stream into the database with the Consumer
// and, in the same run and into the same tables, copies the same rows with nothing but
// pgx CopyFrom, in batches of the same size, one transaction each, on one connection. It
// reports both rates in rows per second and their ratio: what pulling, normalizing,
// duplicate handling and acknowledging cost on top of COPY itself.
func BenchmarkWriterVsRawCopy(b *testing.B) {
	const messages, batchSize = 2000, 500
	url := writertest.Database(b)
	pool := writertest.Pool(b, url)
	js := writertest.NewJetStream(b)
	msgs := writertest.Messages(b, messages)
	rows := 0
	for _, n := range writertest.Expect(b, msgs) {
		rows += n
	}
	ctx := context.Background()
	for _, m := range msgs {
		if _, err := js.JS.PublishMsgAsync(writertest.NATSMsg(m, stream.MsgID(m.ExporterType, m.Body))); err != nil {
			b.Fatal(err)
		}
	}
	select {
	case <-js.JS.PublishAsyncComplete():
	case <-time.After(time.Minute):
		b.Fatal("pre-filling the stream timed out")
	}
	batches := rawBatches(b, msgs, batchSize)

	var writerTime, rawTime time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		truncate(b, pool)
		durable := fmt.Sprintf("bench-%d", i)
		b.StartTimer()
		start := time.Now()
		drain(b, js, pool, durable, batchSize)
		writerTime += time.Since(start)
		b.StopTimer()

		truncate(b, pool)
		start = time.Now()
		rawCopy(b, ctx, pool, batches)
		rawTime += time.Since(start)
		b.StartTimer()
	}
	b.StopTimer()
	writerRate := float64(rows*b.N) / writerTime.Seconds()
	rawRate := float64(rows*b.N) / rawTime.Seconds()
	b.ReportMetric(writerRate, "writer_rows/s")
	b.ReportMetric(rawRate, "raw_copy_rows/s")
	b.ReportMetric(writerRate/rawRate, "writer/raw")
	b.Logf("%d messages, %d rows: writer %.0f rows/s, raw CopyFrom %.0f rows/s, ratio %.2f", messages, rows, writerRate, rawRate, writerRate/rawRate)
}

// drain runs a Consumer with a durable of its own until it has written and acknowledged
// every message of the stream.
func drain(b *testing.B, js *writertest.JetStream, pool *pgxpool.Pool, durable string, batchSize int) {
	reg := prometheus.NewRegistry()
	o := ingest.Options{Durable: durable, BatchSize: batchSize, BatchWait: 50 * time.Millisecond}
	defaults(b, &o)
	c, err := ingest.New(js.JS, store.New(pool, writertest.Logger(b), reg), o, writertest.Logger(b), reg)
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			b.Error(err)
		}
		js.JS.DeleteConsumer(context.Background(), stream.Name, durable)
	}()
	deadline := time.Now().Add(2 * time.Minute)
	for time.Now().Before(deadline) {
		cons, err := js.JS.Consumer(ctx, stream.Name, durable)
		if err == nil {
			info, err := cons.Info(ctx)
			if err == nil && info.NumPending == 0 && info.NumAckPending == 0 && info.Delivered.Stream > 0 {
				return
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	b.Fatal("the consumer did not drain the stream in time")
}

// rawBatch is the rows of batchSize messages by table.
type rawBatch map[string][][]any

func rawBatches(b *testing.B, msgs []writertest.Message, batchSize int) []rawBatch {
	var out []rawBatch
	for chunk := range slices.Chunk(msgs, batchSize) {
		rb := rawBatch{}
		for _, m := range chunk {
			rows, err := normalize.Message(m.ExporterType, m.Body)
			if err != nil {
				b.Fatal(err)
			}
			for table, rs := range rows.Tables {
				rb[table] = append(rb[table], rs...)
			}
		}
		out = append(out, rb)
	}
	return out
}

// rawCopy copies the batches with CopyFrom, one transaction per batch, on one connection.
func rawCopy(b *testing.B, ctx context.Context, pool *pgxpool.Pool, batches []rawBatch) {
	conn, err := pool.Acquire(ctx)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Release()
	for _, rb := range batches {
		err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			for _, table := range slices.Sorted(maps.Keys(rb)) {
				if _, err := tx.CopyFrom(ctx, pgx.Identifier{table}, normalize.Columns(table), pgx.CopyFromRows(rb[table])); err != nil {
					return fmt.Errorf("copy %s: %w", table, err)
				}
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
}

func truncate(b *testing.B, pool *pgxpool.Pool) {
	var names []string
	for _, t := range writertest.Tables() {
		names = append(names, pgx.Identifier{t}.Sanitize())
	}
	if _, err := pool.Exec(context.Background(), "TRUNCATE "+strings.Join(names, ", ")); err != nil {
		b.Fatal(err)
	}
}
