package collector_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"kohaku/pkg/sora"
	"kohaku/pkg/stream"
	"kohaku/testsupport/testenv"
)

const publishTimeout = time.Second

func quickTimeout(s *setup) { s.opts.PublishTimeout = publishTimeout }

// want503 checks a 503 with Retry-After that came within the publish timeout.
func want503(t *testing.T, a answer, took time.Duration) {
	t.Helper()
	if a.status != http.StatusServiceUnavailable {
		t.Fatalf("got %d %s, want 503", a.status, a.body)
	}
	if ra, err := strconv.Atoi(a.header.Get("Retry-After")); err != nil || ra != 3 {
		t.Errorf("Retry-After: got %q, want 3", a.header.Get("Retry-After"))
	}
	if took > publishTimeout+time.Second { // slack for HTTP on a busy machine
		t.Errorf("503 took %s, want it within the publish timeout %s", took, publishTimeout)
	}
	if a.errorMsg == "" {
		t.Errorf("503 body %q, want a JSON error", a.body)
	}
}

func TestNATSStoppedAnswers503ThenRecoversWithoutRestart(t *testing.T) {
	run(t, func(t *testing.T, m mode) {
		r := startReceiver(t, m, quickTimeout)
		body := func(i int) []byte {
			return marshal(t, userAgent(), func(m map[string]any) { m["client_id"] = fmt.Sprint("client-", i) })
		}
		if a := r.post(sora.TypeUserAgent, body(0)); a.status != http.StatusNoContent {
			t.Fatalf("before the outage: got %d %s", a.status, a.body)
		}

		r.nats.Shutdown()
		start := time.Now()
		a := r.post(sora.TypeUserAgent, body(1))
		want503(t, a, time.Since(start))
		if err := r.h.Ready(t.Context()); err == nil {
			t.Error("ready while NATS is stopped")
		}
		if a := r.do(mustRequest(t, http.MethodGet, r.url+"/.ok")); a.status != http.StatusServiceUnavailable {
			t.Errorf("GET /.ok while NATS is stopped: got %d, want 503", a.status)
		}
		if got := r.metric("kohaku_receiver_nats_connected", nil); got != 0 {
			t.Errorf("nats_connected while stopped: got %v, want 0", got)
		}

		if err := r.nats.Restart(); err != nil {
			t.Fatalf("restart nats: %v", err)
		}
		testenv.Eventually(t, 15*time.Second, func() error {
			if a := r.post(sora.TypeUserAgent, body(2)); a.status != http.StatusNoContent {
				return fmt.Errorf("after restart: got %d %s", a.status, a.body)
			}
			return nil
		})
		if err := r.h.Ready(t.Context()); err != nil {
			t.Errorf("not ready after NATS came back: %v", err)
		}
		if msg := r.find(stream.MsgID(sora.TypeUserAgent, body(2))); msg == nil {
			t.Error("message posted after the restart is not in the stream")
		}
		if got := r.metric("kohaku_receiver_nats_reconnects_total", nil); got < 1 {
			t.Errorf("nats_reconnects_total: got %v, want at least 1", got)
		}
	})
}

func TestStreamUnavailableAnswers503(t *testing.T) {
	tests := []struct {
		name  string
		setup func(t *testing.T, r *receiver)
	}{
		{
			// A subscriber that never answers takes the place of the stream: the publish
			// reaches something but no PubAck comes.
			name: "publish times out",
			setup: func(t *testing.T, r *receiver) {
				deleteStream(t, r)
				sub, err := r.nc.SubscribeSync(stream.Subjects)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { sub.Unsubscribe() })
				r.nc.Flush()
			},
		},
		{
			name:  "no stream",
			setup: deleteStream,
		},
		{
			// A stream that refuses new messages once full (DiscardNew), as an operator may
			// configure one.
			name: "stream full",
			setup: func(t *testing.T, r *receiver) {
				cfg := stream.DefaultConfig().StreamConfig()
				cfg.Discard = jetstream.DiscardNew
				cfg.MaxMsgs = 1
				if _, err := r.js.UpdateStream(t.Context(), cfg); err != nil {
					t.Fatal(err)
				}
				full := marshal(t, userAgent(), func(m map[string]any) { m["client_id"] = "filler" })
				if a := r.post(sora.TypeUserAgent, full); a.status != http.StatusNoContent {
					t.Fatalf("filling the stream: got %d %s", a.status, a.body)
				}
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := startReceiver(t, h2c, quickTimeout)
			tc.setup(t, r)
			start := time.Now()
			a := r.post(sora.TypeUserAgent, marshal(t, userAgent(), nil))
			want503(t, a, time.Since(start))
		})
	}
}

func deleteStream(t *testing.T, r *receiver) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := r.js.DeleteStream(ctx, stream.Name); err != nil && !errors.Is(err, jetstream.ErrStreamNotFound) {
		t.Fatal(err)
	}
}
