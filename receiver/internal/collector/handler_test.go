package collector_test

import (
	"bytes"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"kohaku/pkg/sora"
	"kohaku/pkg/stream"
)

func TestCollectAnswers204OnlyOnceStored(t *testing.T) {
	run(t, func(t *testing.T, m mode) {
		r := startReceiver(t, m)
		for _, fx := range allFixtures(t) {
			t.Run(fx.Name, func(t *testing.T) {
				before := time.Now().UTC()
				a := r.post(fx.ExporterType, fx.Body)
				after := time.Now().UTC()
				if a.status != http.StatusNoContent || len(a.body) != 0 {
					t.Fatalf("got %d %q, want 204 and no body", a.status, a.body)
				}
				if a.proto != m.wantProto() {
					t.Errorf("got HTTP/%d, want HTTP/%d", a.proto, m.wantProto())
				}
				// No polling: the message must be in the stream when 204 arrives.
				id := stream.MsgID(fx.ExporterType, fx.Body)
				msg := r.find(id)
				if msg == nil {
					t.Fatalf("message %s not in the stream after 204", id)
				}
				if msg.Subject != stream.Subject(fx.ExporterType) {
					t.Errorf("subject: got %q, want %q", msg.Subject, stream.Subject(fx.ExporterType))
				}
				if !bytes.Equal(msg.Data, fx.Body) {
					t.Errorf("stored body differs from the request body (%d and %d bytes)", len(msg.Data), len(fx.Body))
				}
				wantHeaders := map[string]string{
					stream.HeaderMsgID:        id,
					stream.HeaderExporterType: fx.ExporterType,
					stream.HeaderReceiver:     "receiver-test",
				}
				for k, want := range wantHeaders {
					if got := msg.Header.Get(k); got != want {
						t.Errorf("header %s: got %q, want %q", k, got, want)
					}
				}
				at, err := time.Parse(time.RFC3339Nano, msg.Header.Get(stream.HeaderReceivedAt))
				if err != nil {
					t.Errorf("header %s: %v", stream.HeaderReceivedAt, err)
				} else if at.Before(before) || at.After(after) {
					t.Errorf("header %s: %s not between %s and %s", stream.HeaderReceivedAt, at, before, after)
				}
				if len(msg.Header) != len(wantHeaders)+1 {
					t.Errorf("headers: got %v, want exactly the four of DESIGN.md section 3", msg.Header)
				}
			})
		}
	})
}

func TestSameBodyTwiceIsStoredOnce(t *testing.T) {
	run(t, func(t *testing.T, m mode) {
		r := startReceiver(t, m)
		body := marshal(t, userAgent(), nil)
		for i := range 2 {
			if a := r.post(sora.TypeUserAgent, body); a.status != http.StatusNoContent {
				t.Fatalf("post %d: got %d %s, want 204", i+1, a.status, a.body)
			}
		}
		if n := r.msgs(); n != 1 {
			t.Errorf("stream holds %d messages, want 1", n)
		}
		if d := r.metric("kohaku_receiver_duplicates_total", map[string]string{"exporter_type": sora.TypeUserAgent}); d != 1 {
			t.Errorf("duplicates metric: got %v, want 1", d)
		}
		// The same body under the other exporter type is another message.
		if a := r.post(sora.TypeErlangVM, body); a.status != http.StatusBadRequest {
			t.Errorf("user-agent body as %s: got %d, want 400", sora.TypeErlangVM, a.status)
		}
	})
}

func TestConcurrentRequestsShareOneConnection(t *testing.T) {
	run(t, func(t *testing.T, m mode) {
		r := startReceiver(t, m)
		fx := allFixtures(t)
		const n = 200
		var wg sync.WaitGroup
		errs := make(chan error, n)
		for i := range n {
			f := fx[i%len(fx)]
			body := uniqueBody(t, f.Body, i)
			wg.Go(func() {
				a, err := r.try(r.request(f.ExporterType, bytes.NewReader(body)))
				if err == nil && a.status != http.StatusNoContent {
					err = fmt.Errorf("request %d: got %d %s", i, a.status, a.body)
				}
				if err != nil {
					errs <- err
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
		if got := r.msgs(); got != n {
			t.Errorf("stream holds %d messages, want %d", got, n)
		}
	})
}

func TestBadRequestsAreRefusedAndHarmless(t *testing.T) {
	run(t, func(t *testing.T, m mode) {
		r := startReceiver(t, m)
		ua := func(edit func(map[string]any)) []byte { return marshal(t, userAgent(), edit) }
		erlang := allFixturesOfType(t, sora.TypeErlangVM)
		deep := `{"type":"connection.user-agent","stats":[` + strings.Repeat("[", 100) + strings.Repeat("]", 100) + `]}`
		huge := bytes.Repeat([]byte(" "), int(r.h.BodyLimit())+1)

		tests := []struct {
			name        string
			typ         string // exporter type header
			contentType string // "" keeps application/json; "-" sends none
			body        []byte
			hideLength  bool // stream the body without Content-Length
			method      string
			wantStatus  int
			wantField   string
			wantErr     string // substring of the error message
		}{
			{name: "broken JSON", typ: sora.TypeUserAgent, body: []byte(`{"type":"connection.user-agent",`),
				wantStatus: 400, wantErr: "invalid JSON"},
			{name: "truncated value", typ: sora.TypeUserAgent, body: []byte(`{"type":`),
				wantStatus: 400, wantField: "type", wantErr: "end of JSON"},
			{name: "not an object", typ: sora.TypeUserAgent, body: []byte(`[1,2,3]`),
				wantStatus: 400, wantErr: "must be a JSON object"},
			{name: "empty body", typ: sora.TypeUserAgent, body: nil,
				wantStatus: 400, wantErr: "empty body"},
			{name: "only spaces", typ: sora.TypeErlangVM, body: []byte(" \n\t "),
				wantStatus: 400, wantErr: "empty body"},
			{name: "data after the object", typ: sora.TypeUserAgent, body: append(ua(nil), " {}"...),
				wantStatus: 400, wantErr: "data after the object"},
			{name: "bool as string", typ: sora.TypeUserAgent, body: ua(func(m map[string]any) { m["multistream"] = "true" }),
				wantStatus: 400, wantField: "multistream", wantErr: "boolean"},
			{name: "bool as null", typ: sora.TypeUserAgent, body: ua(func(m map[string]any) { m["spotlight"] = nil }),
				wantStatus: 400, wantField: "spotlight", wantErr: "boolean"},
			{name: "id as number", typ: sora.TypeUserAgent, body: ua(func(m map[string]any) { m["id"] = 7 }),
				wantStatus: 400, wantField: "id", wantErr: "string"},
			{name: "missing session_id", typ: sora.TypeUserAgent, body: ua(func(m map[string]any) { delete(m, "session_id") }),
				wantStatus: 400, wantField: "session_id", wantErr: "required"},
			{name: "missing simulcast", typ: sora.TypeUserAgent, body: ua(func(m map[string]any) { delete(m, "simulcast") }),
				wantStatus: 400, wantField: "simulcast", wantErr: "required"},
			{name: "missing stats", typ: sora.TypeUserAgent, body: ua(func(m map[string]any) { delete(m, "stats") }),
				wantStatus: 400, wantField: "stats", wantErr: "required"},
			{name: "stats not an array", typ: sora.TypeUserAgent, body: ua(func(m map[string]any) { m["stats"] = map[string]any{} }),
				wantStatus: 400, wantField: "stats", wantErr: "array"},
			{name: "stats element not an object", typ: sora.TypeUserAgent, body: ua(func(m map[string]any) { m["stats"] = []any{"codec"} }),
				wantStatus: 400, wantField: "stats[0]", wantErr: "object"},
			{name: "session_id too short", typ: sora.TypeUserAgent, body: ua(func(m map[string]any) { m["session_id"] = strings.Repeat("A", 25) }),
				wantStatus: 400, wantField: "session_id", wantErr: "26"},
			{name: "connection_id too long", typ: sora.TypeUserAgent, body: ua(func(m map[string]any) { m["connection_id"] = strings.Repeat("A", 27) }),
				wantStatus: 400, wantField: "connection_id", wantErr: "26"},
			{name: "overlong channel_id", typ: sora.TypeUserAgent, body: ua(func(m map[string]any) { m["channel_id"] = strings.Repeat("c", 256) }),
				wantStatus: 400, wantField: "channel_id", wantErr: "255"},
			{name: "empty client_id", typ: sora.TypeUserAgent, body: ua(func(m map[string]any) { m["client_id"] = "" }),
				wantStatus: 400, wantField: "client_id", wantErr: "255"},
			{name: "role outside the three", typ: sora.TypeUserAgent, body: ua(func(m map[string]any) { m["role"] = "viewer" }),
				wantStatus: 400, wantField: "role", wantErr: "sendrecv, sendonly or recvonly"},
			{name: "timestamp not RFC 3339", typ: sora.TypeUserAgent, body: ua(func(m map[string]any) { m["timestamp"] = "yesterday" }),
				wantStatus: 400, wantField: "timestamp", wantErr: "RFC 3339"},
			{name: "type differs from header", typ: sora.TypeUserAgent, body: ua(func(m map[string]any) { m["type"] = sora.TypeErlangVM }),
				wantStatus: 400, wantField: "type", wantErr: sora.HeaderExporterType},
			{name: "unknown exporter type", typ: "connection.sora", body: ua(nil),
				wantStatus: 400, wantField: sora.HeaderExporterType, wantErr: "unknown exporter type"},
			{name: "missing exporter type", typ: "", body: ua(nil),
				wantStatus: 400, wantField: sora.HeaderExporterType, wantErr: "unknown exporter type"},
			{name: "deep nesting", typ: sora.TypeUserAgent, body: []byte(deep),
				wantStatus: 400, wantField: "stats", wantErr: "nesting"},
			{name: "invalid UTF-8", typ: sora.TypeUserAgent, body: bytes.Replace(ua(nil), []byte("WebRTC SFU Sora"), []byte("WebRTC \xff\xfe Sora"), 1),
				wantStatus: 400, wantField: "label", wantErr: "UTF-8"},
			{name: "control character in string", typ: sora.TypeUserAgent, body: bytes.Replace(ua(nil), []byte("sora@"), []byte("sora\x01@"), 1),
				wantStatus: 400, wantField: "node_name", wantErr: "control character"},
			{name: "bad number", typ: sora.TypeUserAgent, body: bytes.Replace(ua(nil), []byte(`"payloadType":96`), []byte(`"payloadType":96.`), 1),
				wantStatus: 400, wantField: "stats", wantErr: "bad number"},
			{name: "negative memory figure", typ: sora.TypeErlangVM, body: bytes.Replace(erlang, []byte(`"total":`), []byte(`"total":-`), 1),
				wantStatus: 400, wantField: "stats[0].total", wantErr: "unsigned integer"},
			{name: "huge body with length", typ: sora.TypeUserAgent, body: huge,
				wantStatus: 413, wantErr: "body larger than"},
			{name: "huge body streamed", typ: sora.TypeUserAgent, body: huge, hideLength: true,
				wantStatus: 413, wantErr: "body larger than"},
			{name: "not JSON by content type", typ: sora.TypeUserAgent, contentType: "text/plain", body: ua(nil),
				wantStatus: 415, wantField: "content-type", wantErr: "application/json"},
			{name: "unparsable content type", typ: sora.TypeUserAgent, contentType: "application/json; =x", body: ua(nil),
				wantStatus: 415, wantField: "content-type", wantErr: "application/json"},
			{name: "wrong method", typ: sora.TypeUserAgent, method: http.MethodGet,
				wantStatus: 405},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				var req *http.Request
				if tc.hideLength {
					req = r.request(tc.typ, struct{ *bytes.Reader }{bytes.NewReader(tc.body)})
				} else {
					req = r.request(tc.typ, bytes.NewReader(tc.body))
				}
				if tc.method != "" {
					req.Method = tc.method
				}
				switch tc.contentType {
				case "":
				case "-":
					req.Header.Del("Content-Type")
				default:
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

		// Still healthy: ready, /.ok, and a good request stored.
		r.wantHealthy(t)
		if a := r.post(sora.TypeUserAgent, ua(nil)); a.status != http.StatusNoContent {
			t.Errorf("good request after bad ones: got %d %s", a.status, a.body)
		}
		if got := r.metric("kohaku_receiver_requests_total", map[string]string{"exporter_type": "unknown", "code": "400"}); got != 2 {
			t.Errorf("requests_total{exporter_type=unknown,code=400}: got %v, want 2", got)
		}
	})
}

func TestContentTypeMayBeOmitted(t *testing.T) {
	r := startReceiver(t, h2c)
	for _, ct := range []string{"-", "application/json; charset=utf-8", "application/vnd.sora+json"} {
		req := r.request(sora.TypeUserAgent, bytes.NewReader(marshal(t, userAgent(), func(m map[string]any) { m["client_id"] = ct })))
		if ct == "-" {
			req.Header.Del("Content-Type")
		} else {
			req.Header.Set("Content-Type", ct)
		}
		if a := r.do(req); a.status != http.StatusNoContent {
			t.Errorf("content type %q: got %d %s, want 204", ct, a.status, a.body)
		}
	}
}

func TestBodyLimitIsCappedByNATSMaxPayload(t *testing.T) {
	r := startReceiver(t, h2c, func(s *setup) { s.opts.MaxBodyBytes = 1 << 40 })
	max := r.nc.MaxPayload()
	if got := r.h.BodyLimit(); got <= 0 || got >= max {
		t.Fatalf("body limit %d, want positive and below the server's max payload %d", got, max)
	}
	if got := r.metric("kohaku_receiver_body_limit_bytes", nil); got != float64(r.h.BodyLimit()) {
		t.Errorf("body limit metric: got %v, want %d", got, r.h.BodyLimit())
	}
	// The largest accepted body must also fit in one NATS message with its headers.
	body := marshal(t, userAgent(), func(m map[string]any) { m["padding"] = "" })
	pad := int(r.h.BodyLimit()) - len(body)
	body = marshal(t, userAgent(), func(m map[string]any) { m["padding"] = strings.Repeat("p", pad) })
	if a := r.post(sora.TypeUserAgent, body); a.status != http.StatusNoContent {
		t.Errorf("body of exactly the limit: got %d %s, want 204", a.status, a.body)
	}
	if a := r.post(sora.TypeUserAgent, append(body, ' ')); a.status != http.StatusRequestEntityTooLarge {
		t.Errorf("body one byte over the limit: got %d %s, want 413", a.status, a.body)
	}
}

func TestMetricsCountRequests(t *testing.T) {
	r := startReceiver(t, h2c)
	body := marshal(t, userAgent(), nil)
	r.post(sora.TypeUserAgent, body)
	r.post(sora.TypeUserAgent, []byte("{"))
	for _, c := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"kohaku_receiver_requests_total", map[string]string{"exporter_type": sora.TypeUserAgent, "code": "204"}, 1},
		{"kohaku_receiver_requests_total", map[string]string{"exporter_type": sora.TypeUserAgent, "code": "400"}, 1},
		{"kohaku_receiver_request_duration_seconds", map[string]string{"exporter_type": sora.TypeUserAgent}, 2},
		{"kohaku_receiver_request_body_bytes", map[string]string{"exporter_type": sora.TypeUserAgent}, 2},
		{"kohaku_receiver_publish_duration_seconds", nil, 1},
		{"kohaku_receiver_in_flight_requests", nil, 0},
		{"kohaku_receiver_nats_connected", nil, 1},
		{"kohaku_receiver_duplicates_total", map[string]string{"exporter_type": sora.TypeUserAgent}, 0},
	} {
		if got := r.metric(c.name, c.labels); got != c.want {
			t.Errorf("%s%v: got %v, want %v", c.name, c.labels, got, c.want)
		}
	}
}

func allFixturesOfType(t testing.TB, typ string) []byte {
	t.Helper()
	for _, f := range allFixtures(t) {
		if f.ExporterType == typ {
			return f.Body
		}
	}
	t.Fatalf("no fixture of type %s", typ)
	return nil
}

func mustRequest(t testing.TB, method, url string) *http.Request {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	return req
}

func TestPublishesAreNotSerialized(t *testing.T) {
	r := startReceiver(t, h2c, func(s *setup) { s.opts.PublishTimeout = 10 * time.Second })
	// Stand in for the stream with a responder that answers no publish before it holds
	// all of them: if the receiver published one at a time, nothing would ever be answered.
	deleteStream(t, r)
	const n = 10
	sub, err := r.nc.SubscribeSync(stream.Subjects)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	r.nc.Flush()
	held := make(chan error, 1)
	go func() {
		var msgs []*nats.Msg
		for len(msgs) < n {
			m, err := sub.NextMsg(8 * time.Second)
			if err != nil {
				held <- fmt.Errorf("held %d publishes at once, want %d: %w", len(msgs), n, err)
				return
			}
			msgs = append(msgs, m)
		}
		for i, m := range msgs {
			m.Respond(fmt.Appendf(nil, `{"stream":%q,"seq":%d}`, stream.Name, i+1))
		}
		held <- nil
	}()

	var wg sync.WaitGroup
	statuses := make(chan int, n)
	for i := range n {
		body := marshal(t, userAgent(), func(m map[string]any) { m["client_id"] = fmt.Sprint("c", i) })
		wg.Go(func() {
			a, err := r.try(r.request(sora.TypeUserAgent, bytes.NewReader(body)))
			if err != nil {
				t.Error(err)
			}
			statuses <- a.status
		})
	}
	if err := <-held; err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	close(statuses)
	for s := range statuses {
		if s != http.StatusNoContent {
			t.Errorf("got %d, want 204", s)
		}
	}
}
