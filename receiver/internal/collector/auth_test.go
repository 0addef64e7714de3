package collector_test

import (
	"bytes"
	"io"
	"net/http"
	"testing"
	"time"

	"kohaku/pkg/sora"
	"kohaku/receiver/internal/collector"
)

// withBasicAuth makes the receiver require user sora with password "s3cret: pass".
func withBasicAuth(s *setup) {
	s.opts.BasicAuth = &collector.BasicAuth{User: "sora", Password: "s3cret: pass"}
}

func TestBasicAuthGuardsBothIngestRoutes(t *testing.T) {
	run(t, func(t *testing.T, m mode) {
		r := startReceiver(t, m, withBasicAuth)
		routes := []struct {
			name string
			req  func(body io.Reader) *http.Request
			typ  string
			body []byte
		}{
			{"collector", func(b io.Reader) *http.Request { return r.request(sora.TypeUserAgent, b) },
				sora.TypeUserAgent, marshal(t, userAgent(), nil)},
			{"webhook", func(b io.Reader) *http.Request { return r.webhookRequest(sora.TypeConnectionRTC, b) },
				sora.TypeConnectionRTC, webhookFixtures(t)[0].Body},
		}
		tests := []struct {
			name       string
			auth       func(*http.Request)
			wantStatus int
			wantReason string // of a 401
		}{
			{"right credential", func(q *http.Request) { q.SetBasicAuth("sora", "s3cret: pass") }, http.StatusNoContent, ""},
			{"wrong password", func(q *http.Request) { q.SetBasicAuth("sora", "s3cret: pasS") }, http.StatusUnauthorized, "wrong"},
			{"password prefix", func(q *http.Request) { q.SetBasicAuth("sora", "s3cret") }, http.StatusUnauthorized, "wrong"},
			{"wrong user", func(q *http.Request) { q.SetBasicAuth("Sora", "s3cret: pass") }, http.StatusUnauthorized, "wrong"},
			{"empty credential", func(q *http.Request) { q.SetBasicAuth("", "") }, http.StatusUnauthorized, "wrong"},
			{"missing", func(*http.Request) {}, http.StatusUnauthorized, "missing"},
			{"another scheme", func(q *http.Request) { q.Header.Set("Authorization", "Bearer s3cret") }, http.StatusUnauthorized, "missing"},
		}
		want401 := map[string]float64{}
		for _, rt := range routes {
			for _, tc := range tests {
				t.Run(rt.name+"/"+tc.name, func(t *testing.T) {
					req := rt.req(bytes.NewReader(rt.body))
					tc.auth(req)
					a := r.do(req)
					if a.status != tc.wantStatus {
						t.Fatalf("got %d %s, want %d", a.status, a.body, tc.wantStatus)
					}
					if tc.wantStatus == http.StatusNoContent {
						r.wantStored(t, rt.typ, rt.body)
						return
					}
					want401[tc.wantReason]++
					if got := a.header.Get("WWW-Authenticate"); got != `Basic realm="kohaku"` {
						t.Errorf("WWW-Authenticate: got %q, want %q", got, `Basic realm="kohaku"`)
					}
					if a.errorField != "authorization" || a.errorMsg == "" {
						t.Errorf("got body %q, want a JSON error naming authorization", a.body)
					}
				})
			}
		}
		if n := r.msgs(); n != uint64(len(routes)) {
			t.Errorf("stream holds %d messages, want %d: one per route with the right credential", n, len(routes))
		}
		for _, reason := range []string{"missing", "wrong"} {
			labels := map[string]string{"reason": reason}
			if got := r.metric("kohaku_receiver_auth_failures_total", labels); got != want401[reason] {
				t.Errorf("auth_failures_total%v: got %v, want %v", labels, got, want401[reason])
			}
		}
		for _, rt := range routes {
			labels := map[string]string{"exporter_type": rt.typ, "code": "401"}
			if got := r.metric("kohaku_receiver_requests_total", labels); got != float64(len(tests)-1) {
				t.Errorf("requests_total%v: got %v, want %d", labels, got, len(tests)-1)
			}
			// Refused before the body was read: only the accepted body was measured.
			labels = map[string]string{"exporter_type": rt.typ}
			if got := r.metric("kohaku_receiver_request_body_bytes", labels); got != 1 {
				t.Errorf("request_body_bytes%v: %v bodies read, want 1", labels, got)
			}
		}
		if a := r.do(mustRequest(t, http.MethodGet, r.url+"/.ok")); a.status != http.StatusNoContent {
			t.Errorf("GET /.ok without credentials: got %d %s, want 204", a.status, a.body)
		}
	})
}

// TestBasicAuthAnswersAStalledBodyByTheReadTimeout sends the start of a body without
// credentials and never the rest. The receiver reads a refused body to its end before
// answering, so that the answer reaches the client, but no longer than the read timeout:
// the 401 arrives then.
func TestBasicAuthAnswersAStalledBodyByTheReadTimeout(t *testing.T) {
	run(t, func(t *testing.T, m mode) {
		r := startReceiver(t, m, withBasicAuth, func(s *setup) { s.server.ReadTimeout = time.Second })
		pr, pw := io.Pipe()
		defer pw.Close()
		go pw.Write([]byte(`{"type":"connection.rtc",`)) // and never the rest
		a := r.do(r.webhookRequest(sora.TypeConnectionRTC, pr))
		if a.status != http.StatusUnauthorized || a.errorField != "authorization" {
			t.Fatalf("got %d %s, want 401 with a JSON error", a.status, a.body)
		}
	})
}

func TestWithoutBasicAuthCredentialsAreIgnored(t *testing.T) {
	r := startReceiver(t, h2c)
	req := r.webhookRequest(sora.TypeConnectionRTC, bytes.NewReader(webhookFixtures(t)[0].Body))
	req.SetBasicAuth("anyone", "anything")
	if a := r.do(req); a.status != http.StatusNoContent {
		t.Errorf("got %d %s, want 204", a.status, a.body)
	}
}
