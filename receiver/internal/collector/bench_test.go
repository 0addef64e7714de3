package collector_test

import (
	"bytes"
	"context"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"kohaku/pkg/stream"
)

// BenchmarkReceiverVsRawPublish measures requests per second through the receiver (h2c,
// one connection, many streams in flight) against publishing the same payloads straight to
// JetStream with the same concurrency, in the same run and on the same embedded server, and
// reports their ratio: what the HTTP side costs on top of the PubAck wait it cannot avoid.
//
//	go test -run XXX -bench ReceiverVsRawPublish -benchtime 2000x ./receiver/internal/collector
func BenchmarkReceiverVsRawPublish(b *testing.B) {
	r := startReceiver(b, h2c, func(s *setup) { s.stream.MaxBytes = 1 << 30 })
	payloads := allFixtures(b)
	// Every request gets a body of its own, made before the timer starts: JetStream answers
	// duplicates without storing them, which would flatter both sides.
	var made int
	var next atomic.Int64
	type payload struct {
		typ  string
		body []byte
	}
	var bodies []payload
	prepare := func(b *testing.B) {
		bodies = bodies[:0]
		for range b.N {
			f := payloads[made%len(payloads)]
			bodies = append(bodies, payload{f.ExporterType, uniqueBody(b, f.Body, made)})
			made++
		}
		next.Store(-1)
	}
	body := func() (string, []byte) {
		p := bodies[next.Add(1)]
		return p.typ, p.body
	}
	// Sora posts from many channels at once: keep many requests in flight.
	const inFlightPerProc = 16
	var rawRate float64

	b.Run("raw-publish", func(b *testing.B) {
		prepare(b)
		b.SetParallelism(inFlightPerProc)
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				typ, data := body()
				msg := stream.NewMsg(typ, data, time.Now(), "bench")
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				_, err := r.js.PublishMsg(ctx, msg)
				cancel()
				if err != nil {
					b.Error(err)
					return
				}
			}
		})
		rawRate = float64(b.N) / b.Elapsed().Seconds()
		b.ReportMetric(rawRate, "req/s")
	})

	b.Run("receiver-h2c", func(b *testing.B) {
		prepare(b)
		b.SetParallelism(inFlightPerProc)
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				typ, data := body()
				resp, err := r.client.Do(r.request(typ, bytes.NewReader(data)))
				if err != nil {
					b.Error(err)
					return
				}
				resp.Body.Close()
				if resp.StatusCode != http.StatusNoContent {
					b.Errorf("got %d", resp.StatusCode)
					return
				}
			}
		})
		rate := float64(b.N) / b.Elapsed().Seconds()
		b.ReportMetric(rate, "req/s")
		if rawRate > 0 && b.N > 1 { // not the first, single-iteration run
			b.ReportMetric(rate/rawRate, "x-raw")
			b.Logf("receiver over h2c: %.0f req/s; raw JetStream publish: %.0f req/s; ratio %.2f", rate, rawRate, rate/rawRate)
		}
	})
}
