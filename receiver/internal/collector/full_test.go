package collector_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"kohaku/pkg/sora"
	"kohaku/pkg/stream"
	"kohaku/testsupport/testenv"
)

// TestFullStreamAnswers503UntilThereIsRoom fills a small stream through the receiver: the
// refused request is answered 503 with Retry-After and a JSON body saying the stream is
// full, counted; readiness (Ready and GET /.ok) fails; nothing stored is deleted. Once the
// stream has room again (the writer trims what it wrote), readiness comes back by itself
// and requests are stored again.
func TestFullStreamAnswers503UntilThereIsRoom(t *testing.T) {
	run(t, func(t *testing.T, m mode) {
		r := startReceiver(t, m, func(s *setup) { s.stream.MaxBytes = 64 << 10 })
		ctx, cancel := context.WithCancel(context.Background())
		watched := make(chan struct{})
		go func() {
			r.h.WatchStream(ctx)
			close(watched)
		}()
		t.Cleanup(func() { cancel(); <-watched })

		body := func(i int) []byte {
			return marshal(t, userAgent(), func(m map[string]any) {
				m["client_id"] = fmt.Sprint("client-", i)
				m["padding"] = strings.Repeat("x", 4000)
			})
		}
		var full answer
		stored := 0
		for i := 0; ; i++ {
			a := r.post(sora.TypeUserAgent, body(i))
			if a.status != http.StatusNoContent {
				full = a
				break
			}
			stored++
			if i == 100 {
				t.Fatal("100 bodies of 4 KB fit in a stream of 64 KiB")
			}
		}
		if full.status != http.StatusServiceUnavailable || full.header.Get("Retry-After") != "3" {
			t.Fatalf("the stream full: got %d with Retry-After %q, want 503 with 3", full.status, full.header.Get("Retry-After"))
		}
		wantError(t, full, "", "stream full")
		if got := r.metric("kohaku_receiver_stream_full_total", nil); got != 1 {
			t.Errorf("kohaku_receiver_stream_full_total = %v, want 1", got)
		}
		if got := r.metric("kohaku_receiver_requests_total", map[string]string{"code": "503"}); got != 1 {
			t.Errorf("kohaku_receiver_requests_total{code=503} = %v, want 1", got)
		}
		if err := r.h.Ready(t.Context()); !errors.Is(err, stream.ErrFull) {
			t.Errorf("Ready while the stream is full: %v, want %v", err, stream.ErrFull)
		}
		ok := r.do(mustRequest(t, http.MethodGet, r.url+"/.ok"))
		if ok.status != http.StatusServiceUnavailable || ok.header.Get("Retry-After") == "" {
			t.Errorf("GET /.ok while the stream is full: got %d, Retry-After %q; want 503 with it", ok.status, ok.header.Get("Retry-After"))
		}
		wantError(t, ok, "", "stream full")
		if n := r.msgs(); n != uint64(stored) {
			t.Errorf("the full stream holds %d messages, want the %d stored", n, stored)
		}

		// Room again: as the writer does once it has written the oldest messages.
		if err := r.kohaku().Purge(t.Context(), jetstream.WithPurgeSequence(uint64(stored/2))); err != nil {
			t.Fatal(err)
		}
		testenv.Eventually(t, 10*time.Second, func() error { return r.h.Ready(t.Context()) })
		if a := r.do(mustRequest(t, http.MethodGet, r.url+"/.ok")); a.status != http.StatusNoContent {
			t.Errorf("GET /.ok with room again: got %d %s, want 204", a.status, a.body)
		}
		if a := r.post(sora.TypeUserAgent, body(1000)); a.status != http.StatusNoContent {
			t.Errorf("with room again: got %d %s, want 204", a.status, a.body)
		}
	})
}

// TestStreamSeriesOnTheReceiver checks that the receiver exports the stream's fill.
func TestStreamSeriesOnTheReceiver(t *testing.T) {
	r := startReceiver(t, h2c, func(s *setup) { s.stream.MaxBytes = 1 << 20 })
	ctx, cancel := context.WithCancel(context.Background())
	watched := make(chan struct{})
	go func() {
		r.h.WatchStream(ctx)
		close(watched)
	}()
	t.Cleanup(func() { cancel(); <-watched })
	if a := r.post(sora.TypeUserAgent, marshal(t, userAgent(), nil)); a.status != http.StatusNoContent {
		t.Fatalf("got %d %s", a.status, a.body)
	}
	testenv.Eventually(t, 15*time.Second, func() error {
		for _, tc := range []struct {
			name string
			want func(float64) bool
		}{
			{name: "kohaku_stream_max_bytes", want: func(v float64) bool { return v == 1<<20 }},
			{name: "kohaku_stream_messages", want: func(v float64) bool { return v == 1 }},
			{name: "kohaku_stream_bytes", want: func(v float64) bool { return v > 0 }},
			{name: "kohaku_stream_max_messages", want: func(v float64) bool { return v == -1 }},
		} {
			if v := r.metric(tc.name, nil); !tc.want(v) {
				return fmt.Errorf("%s = %v", tc.name, v)
			}
		}
		return nil
	})
}
