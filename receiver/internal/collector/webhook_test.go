package collector_test

import (
	"bytes"
	"net/http"
	"strings"
	"testing"
	"time"

	"kohaku/pkg/config"
	"kohaku/pkg/sora"
	"kohaku/pkg/stream"
	"kohaku/receiver/internal/collector"
)

func TestWebhookAnswers204OnlyOnceStored(t *testing.T) {
	run(t, func(t *testing.T, m mode) {
		r := startReceiver(t, m)
		fxs := webhookFixtures(t)
		for _, fx := range fxs {
			t.Run(fx.Name, func(t *testing.T) {
				a := r.postWebhook(sora.TypeConnectionRTC, fx.Body)
				if a.status != http.StatusNoContent || len(a.body) != 0 {
					t.Fatalf("got %d %q, want 204 and no body", a.status, a.body)
				}
				if a.proto != m.wantProto() {
					t.Errorf("got HTTP/%d, want HTTP/%d", a.proto, m.wantProto())
				}
				r.wantStored(t, sora.TypeConnectionRTC, fx.Body)
				// The subject that the writer reads, spelled out as DESIGN.md section 2 has it.
				if msg := r.find(stream.MsgID(sora.TypeConnectionRTC, fx.Body)); msg.Subject != "kohaku.stats.connection.rtc" {
					t.Errorf("subject %q, want kohaku.stats.connection.rtc", msg.Subject)
				}
			})
		}
		if n := r.msgs(); n != uint64(len(fxs)) {
			t.Errorf("stream holds %d messages, want %d", n, len(fxs))
		}
		labels := map[string]string{"exporter_type": sora.TypeConnectionRTC, "code": "204"}
		if got := r.metric("kohaku_receiver_requests_total", labels); got != float64(len(fxs)) {
			t.Errorf("requests_total%v: got %v, want %d", labels, got, len(fxs))
		}
	})
}

func TestWebhookWithoutHeaderIsTypedByItsBody(t *testing.T) {
	run(t, func(t *testing.T, m mode) {
		r := startReceiver(t, m)
		for _, fx := range webhookFixtures(t) {
			t.Run(fx.Name, func(t *testing.T) {
				if a := r.postWebhook("", fx.Body); a.status != http.StatusNoContent {
					t.Fatalf("got %d %s, want 204", a.status, a.body)
				}
				r.wantStored(t, sora.TypeConnectionRTC, fx.Body)
			})
		}
	})
}

func TestWebhookSameBodyOverHTTP1ThenHTTP2IsStoredOnce(t *testing.T) {
	// One server speaks HTTP/1.1 and h2c on a plain port, HTTP/1.1 and h2 over TLS: Sora's
	// retry may come over either, and it must be the same message.
	for _, m := range []mode{h2c, h2} {
		t.Run(string(m), func(t *testing.T) {
			r := startReceiver(t, m)
			tr1 := r.tr.Clone()
			tr1.Protocols = new(http.Protocols)
			tr1.Protocols.SetHTTP1(true)
			if tr1.TLSClientConfig != nil {
				tr1.TLSClientConfig.NextProtos = []string{"http/1.1"} // the clone offers h2 too
			}
			t.Cleanup(tr1.CloseIdleConnections)
			viaH1 := &receiver{t: t, mode: h1, reg: r.reg, url: r.url, hook: r.hook, client: &http.Client{Transport: tr1, Timeout: 30 * time.Second}}

			body := webhookFixtures(t)[0].Body
			first, second := viaH1.postWebhook(sora.TypeConnectionRTC, body), r.postWebhook(sora.TypeConnectionRTC, body)
			for i, a := range []answer{first, second} {
				if a.status != http.StatusNoContent || a.proto != i+1 {
					t.Errorf("post %d: got %d over HTTP/%d %s, want 204 over HTTP/%d", i+1, a.status, a.proto, a.body, i+1)
				}
			}
			if n := r.msgs(); n != 1 {
				t.Errorf("stream holds %d messages, want 1", n)
			}
			if d := r.metric("kohaku_receiver_duplicates_total", map[string]string{"exporter_type": sora.TypeConnectionRTC}); d != 1 {
				t.Errorf("duplicates metric: got %v, want 1", d)
			}
			r.wantStored(t, sora.TypeConnectionRTC, body)
		})
	}
}

func TestWebhookBadRequestsAreRefusedAndHarmless(t *testing.T) {
	run(t, func(t *testing.T, m mode) {
		r := startReceiver(t, m)
		rtc := func(edit func(map[string]any)) []byte { return marshal(t, connectionRTC(), edit) }

		tests := []struct {
			name        string
			path        string // "" is the webhook path
			typ         string // the type header of the path's route; "" sends none
			contentType string // "" keeps application/json
			method      string
			body        []byte
			wantStatus  int
			wantField   string
			wantErr     string // substring of the error message
		}{
			{name: "unknown type in header", typ: "connection.sora", body: rtc(nil),
				wantStatus: 400, wantField: sora.HeaderWebhookType, wantErr: "unknown webhook type"},
			{name: "exporter type in header", typ: sora.TypeUserAgent, body: marshal(t, userAgent(), nil),
				wantStatus: 400, wantField: sora.HeaderWebhookType, wantErr: "unknown webhook type"},
			{name: "unknown type in body without header", body: rtc(func(m map[string]any) { m["type"] = "connection.sora" }),
				wantStatus: 400, wantField: "type", wantErr: "unknown webhook type"},
			{name: "exporter body without header", body: marshal(t, userAgent(), nil),
				wantStatus: 400, wantField: "type", wantErr: "unknown webhook type"},
			{name: "type not a string without header", body: rtc(func(m map[string]any) { m["type"] = 7 }),
				wantStatus: 400, wantField: "type", wantErr: "string"},
			{name: "no type without header", body: rtc(func(m map[string]any) { delete(m, "type") }),
				wantStatus: 400, wantField: "type", wantErr: "required"},
			{name: "broken JSON without header", body: []byte(`{"type":"connection.rtc",`),
				wantStatus: 400, wantErr: "invalid JSON"},
			{name: "header and body disagree", typ: sora.TypeConnectionRTC, body: rtc(func(m map[string]any) { m["type"] = sora.TypeUserAgent }),
				wantStatus: 400, wantField: "type", wantErr: sora.HeaderWebhookType},
			{name: "multistream as string", typ: sora.TypeConnectionRTC, body: rtc(func(m map[string]any) { m["multistream"] = "true" }),
				wantStatus: 400, wantField: "multistream", wantErr: "boolean"},
			{name: "multistream as null", typ: sora.TypeConnectionRTC, body: rtc(func(m map[string]any) { m["multistream"] = nil }),
				wantStatus: 400, wantField: "multistream", wantErr: "boolean"},
			{name: "group_id of 256 bytes", typ: sora.TypeConnectionRTC, body: rtc(func(m map[string]any) { m["group_id"] = strings.Repeat("g", 256) }),
				wantStatus: 400, wantField: "group_id", wantErr: "1 to 255 bytes"},
			{name: "empty id", typ: sora.TypeConnectionRTC, body: rtc(func(m map[string]any) { m["id"] = "" }),
				wantStatus: 400, wantField: "id", wantErr: "1 to 255 bytes"},
			{name: "bundle_id as number", typ: sora.TypeConnectionRTC, body: rtc(func(m map[string]any) { m["bundle_id"] = 1 }),
				wantStatus: 400, wantField: "bundle_id", wantErr: "string"},
			{name: "stats not an array", typ: sora.TypeConnectionRTC, body: rtc(func(m map[string]any) { m["stats"] = map[string]any{} }),
				wantStatus: 400, wantField: "stats", wantErr: "array"},
			{name: "missing connection_id", typ: sora.TypeConnectionRTC, body: rtc(func(m map[string]any) { delete(m, "connection_id") }),
				wantStatus: 400, wantField: "connection_id", wantErr: "required"},
			{name: "not JSON by content type", typ: sora.TypeConnectionRTC, contentType: "text/plain", body: rtc(nil),
				wantStatus: 415, wantField: "content-type", wantErr: "application/json"},
			{name: "webhook type on /collector", path: collector.CollectorPath, typ: sora.TypeConnectionRTC, body: rtc(nil),
				wantStatus: 400, wantField: sora.HeaderExporterType, wantErr: "unknown exporter type"},
			{name: "wrong method", method: http.MethodGet, wantStatus: 405},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				req := r.webhookRequest(tc.typ, bytes.NewReader(tc.body))
				if tc.path != "" {
					req = r.request(tc.typ, bytes.NewReader(tc.body))
				}
				if tc.method != "" {
					req.Method = tc.method
				}
				if tc.contentType != "" {
					req.Header.Set("Content-Type", tc.contentType)
				}
				a := r.do(req)
				if a.status != tc.wantStatus {
					t.Fatalf("got %d %s, want %d", a.status, a.body, tc.wantStatus)
				}
				if tc.wantErr == "" {
					return
				}
				wantError(t, a, tc.wantField, tc.wantErr)
			})
		}

		// Still healthy: ready, /.ok, nothing stored, and a good request stored.
		r.wantHealthy(t)
		if a := r.postWebhook(sora.TypeConnectionRTC, rtc(nil)); a.status != http.StatusNoContent {
			t.Errorf("good request after bad ones: got %d %s", a.status, a.body)
		}
		// The label stays a closed set: unknown types, in a header or a body, are "unknown".
		if got := r.metric("kohaku_receiver_requests_total", map[string]string{"exporter_type": "unknown", "code": "400"}); got != 5 {
			t.Errorf("requests_total{exporter_type=unknown,code=400}: got %v, want 5", got)
		}
	})
}

func TestWebhookPathIsConfigurable(t *testing.T) {
	r := startReceiver(t, h2c, func(s *setup) { s.opts.WebhookPath = "/sora/stats_webhook-1" })
	body := webhookFixtures(t)[0].Body
	for _, tc := range []struct {
		name, path string
		want       int
	}{
		{"configured path", "/sora/stats_webhook-1", http.StatusNoContent},
		{"default path", "/stats-webhook", http.StatusNotFound},
		{"configured path with a trailing slash", "/sora/stats_webhook-1/", http.StatusNotFound},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := r.do(r.requestTo(tc.path, sora.HeaderWebhookType, sora.TypeConnectionRTC, bytes.NewReader(body)))
			if a.status != tc.want {
				t.Errorf("POST %s: got %d %s, want %d", tc.path, a.status, a.body, tc.want)
			}
		})
	}
	if n := r.msgs(); n != 1 {
		t.Errorf("stream holds %d messages, want 1", n)
	}
}

func TestNewHandlerRefusesBadOptions(t *testing.T) {
	tests := []struct {
		name    string
		edit    func(*collector.Options)
		wantErr string
	}{
		{"relative webhook path", func(o *collector.Options) { o.WebhookPath = "stats-webhook" }, "absolute"},
		{"webhook path with a trailing slash", func(o *collector.Options) { o.WebhookPath = "/stats/" }, "trailing"},
		{"webhook path with dot segments", func(o *collector.Options) { o.WebhookPath = "/a/../b" }, "absolute"},
		{"webhook path with a wildcard", func(o *collector.Options) { o.WebhookPath = "/{type}" }, "letters, digits"},
		{"webhook path with a space", func(o *collector.Options) { o.WebhookPath = "/stats webhook" }, "letters, digits"},
		{"webhook path of /collector", func(o *collector.Options) { o.WebhookPath = collector.CollectorPath }, "taken"},
		{"webhook path of /.ok", func(o *collector.Options) { o.WebhookPath = "/.ok" }, "taken"},
		{"webhook path /", func(o *collector.Options) { o.WebhookPath = "/" }, "every path"},
		{"basic auth without user", func(o *collector.Options) { o.BasicAuth = &collector.BasicAuth{Password: "p"} }, "empty user"},
		{"basic auth without password", func(o *collector.Options) { o.BasicAuth = &collector.BasicAuth{User: "u"} }, "empty password"},
		{"basic auth user with a colon", func(o *collector.Options) { o.BasicAuth = &collector.BasicAuth{User: "a:b", Password: "p"} }, "colon"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o := collector.Options{ReceiverID: "test", MaxBodyBytes: 1 << 20, PublishTimeout: time.Second, RetryAfter: time.Second}
			if err := config.Defaults(&o); err != nil { // the default webhook path
				t.Fatal(err)
			}
			tc.edit(&o)
			// Options are checked before the connection is used.
			_, err := collector.NewHandler(nil, nil, o, testLogger(), nil)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("got %v, want an error containing %q", err, tc.wantErr)
			}
		})
	}
}
