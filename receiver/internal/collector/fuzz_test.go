package collector_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"kohaku/pkg/config"
	"kohaku/pkg/sora"
	"kohaku/receiver/internal/collector"
)

// FuzzCollect sends arbitrary bodies, exporter types and content types through the request
// path: content type, body limit, validation and the error answers. It must never panic,
// answer only the statuses of DESIGN.md section 2, refuse with 400 exactly what
// sora.Validate refuses, and give every failure a JSON error body.
//
// Fuzzing needs the same coverage each time an input runs, or it stalls minimizing
// inputs that only looked new: so the target has no NATS server or live connection (whose
// goroutines run meanwhile), answering 503 to a valid body, and skips the timing metrics.
// The way into JetStream is tested over real sockets by the other tests. Large seeds make
// minimizing slow; fuzz with a short minimize time:
//
//	go test -run XXX -fuzz FuzzCollect -fuzztime 5m -fuzzminimizetime 2s ./receiver/internal/collector
func FuzzCollect(f *testing.F) {
	for _, fx := range allFixtures(f) {
		f.Add(fx.ExporterType, "application/json", fx.Body)
	}
	ua := marshal(f, userAgent(), nil)
	f.Add(sora.TypeUserAgent, "application/json", ua)
	f.Add(sora.TypeUserAgent, "", ua[:len(ua)/2])
	f.Add(sora.TypeErlangVM, "application/json", ua)
	f.Add("", "text/plain", []byte("{}"))
	f.Add(sora.TypeConnectionRTC, "application/json", webhookFixtures(f)[0].Body)
	f.Add(sora.TypeUserAgent, "application/json", []byte(`{"type":"connection.user-agent","stats":[[[[[[]]]]]]}`))
	f.Add(sora.TypeUserAgent, "application/json", []byte("{\"label\":\"\xff\"}"))
	f.Add(sora.TypeErlangVM, "application/json; charset=utf-8", []byte(`{"stats":[{"type":"erlang-vm-memory","total":1e3}]}`))

	h := closedHandler(f)
	f.Fuzz(func(t *testing.T, typ, contentType string, body []byte) {
		w := fuzzAnswer(h, collector.CollectorPath, sora.HeaderExporterType, typ, contentType, body)
		valid := sora.ErrUnknownType // /collector takes only the exporter's types
		if sora.ExporterType(typ) {
			valid = sora.Validate(typ, body)
		}
		checkFuzzAnswer(t, w, valid)
	})
}

// FuzzWebhook is FuzzCollect for the stats webhook, whose type comes from its header or,
// without one, from the body.
//
//	go test -run XXX -fuzz FuzzWebhook -fuzztime 5m -fuzzminimizetime 2s ./receiver/internal/collector
func FuzzWebhook(f *testing.F) {
	for _, fx := range webhookFixtures(f) {
		f.Add(fx.ExporterType, "application/json", fx.Body)
		f.Add("", "application/json", fx.Body)
	}
	rtc := marshal(f, connectionRTC(), nil)
	f.Add(sora.TypeConnectionRTC, "application/json", rtc)
	f.Add("", "", rtc[:len(rtc)/2])
	f.Add(sora.TypeUserAgent, "application/json", rtc)
	f.Add("", "application/json", marshal(f, userAgent(), nil))
	f.Add("", "application/json", []byte(`{"type":7}`))
	f.Add("", "application/json", []byte(`{"type":"connection.r\u0074c","type":"x"}`))

	h := closedHandler(f)
	f.Fuzz(func(t *testing.T, typ, contentType string, body []byte) {
		w := fuzzAnswer(h, h.WebhookPath(), sora.HeaderWebhookType, typ, contentType, body)
		if typ == "" {
			typ = sora.BodyType(body)
			if typ == "" {
				typ = sora.TypeConnectionRTC // what the receiver validates it as
			}
		}
		valid := sora.ErrUnknownType
		if sora.WebhookType(typ) {
			valid = sora.Validate(typ, body)
		}
		checkFuzzAnswer(t, w, valid)
	})
}

// fuzzAnswer posts body to path with the type header and content type when not empty.
func fuzzAnswer(h *collector.Handler, path, header, typ, contentType string, body []byte) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodPost, path, bytes.NewReader(body))
	if typ != "" {
		req.Header.Set(header, typ)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	w := httptest.NewRecorder()
	h.Answer(w, req)
	return w
}

// checkFuzzAnswer fails t unless w is an answer of DESIGN.md section 2 with a JSON error
// body, 413 when valid (what sora.Validate says of the body) is a *sora.LimitError, and
// 400 exactly when it is another error.
func checkFuzzAnswer(t *testing.T, w *httptest.ResponseRecorder, valid error) {
	t.Helper()
	var limit *sora.LimitError
	if errors.As(valid, &limit) && w.Code != http.StatusRequestEntityTooLarge {
		t.Fatalf("%d for a body over a limit (%v), want 413: %s", w.Code, valid, w.Body)
	}
	switch w.Code {
	case http.StatusBadRequest:
		if valid == nil || limit != nil {
			t.Fatalf("400 for a body that Validate accepts within the limits: %s", w.Body)
		}
	case http.StatusServiceUnavailable:
		if valid != nil || w.Header().Get("Retry-After") == "" {
			t.Fatalf("503 for %v, Retry-After %q: want it only for valid bodies, with Retry-After", valid, w.Header().Get("Retry-After"))
		}
	case http.StatusRequestEntityTooLarge, http.StatusUnsupportedMediaType:
	default:
		t.Fatalf("unexpected status %d", w.Code)
	}
	var e sora.FieldError
	if err := json.Unmarshal(w.Body.Bytes(), &e); err != nil || e.Msg == "" {
		t.Fatalf("status %d with body %q, want a JSON error: %v", w.Code, w.Body, errors.Join(err))
	}
}

// closedHandler returns a Handler whose NATS connection is closed, without any server.
func closedHandler(t testing.TB) *collector.Handler {
	t.Helper()
	// RetryOnFailedConnect gives a connection even though nothing listens on port 1.
	nc, err := nats.Connect("nats://127.0.0.1:1", nats.RetryOnFailedConnect(true), nats.MaxReconnects(0))
	if err != nil {
		t.Fatal(err)
	}
	nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	o := collector.Options{ReceiverID: "fuzz", MaxBodyBytes: 64 << 10, PublishTimeout: time.Second, RetryAfter: time.Second}
	if err := config.Defaults(&o); err != nil { // the default webhook path
		t.Fatal(err)
	}
	h, err := collector.NewHandler(nc, js, o, testLogger(), prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	return h
}
