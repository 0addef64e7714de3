package collector_test

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"kohaku/pkg/config"
	"kohaku/pkg/normalize"
	"kohaku/pkg/sora"
	"kohaku/receiver/internal/collector"
)

// TestLimitDefaultsAreSoras keeps the defaults of the variables equal to those that
// sora.Validate has, which its tests size on a large room, and the id bound within what the
// writer stores.
func TestLimitDefaultsAreSoras(t *testing.T) {
	var o collector.Options
	if err := config.Defaults(&o); err != nil {
		t.Fatal(err)
	}
	got := sora.Limits{MaxElements: o.MaxElements, MaxMembers: o.MaxMembers, MaxIDBytes: o.MaxIDBytes}
	want := sora.Limits{MaxElements: sora.DefaultMaxElements, MaxMembers: sora.DefaultMaxMembers, MaxIDBytes: sora.DefaultMaxIDBytes}
	if got != want {
		t.Errorf("Options defaults %+v, want sora's %+v", got, want)
	}
	o.ReceiverID, o.MaxIDBytes = "x", normalize.MaxIDBytes
	if err := o.Validate(); err != nil {
		t.Errorf("KOHAKU_MAX_ID_BYTES=%d, the writer's bound: %v", normalize.MaxIDBytes, err)
	}
	o.MaxIDBytes++
	if err := o.Validate(); err == nil || !strings.Contains(err.Error(), "KOHAKU_MAX_ID_BYTES") {
		t.Errorf("KOHAKU_MAX_ID_BYTES beyond the writer's bound: got %v, want an error naming it", err)
	}
}

// TestReportsBeyondTheLimitsAreRefused sends reports at and over each limit, with the
// defaults an operator gets, and bodies whose verdict an escape must not change.
func TestReportsBeyondTheLimitsAreRefused(t *testing.T) {
	elements := func(n int) []any {
		out := make([]any, n)
		for i := range out {
			out[i] = map[string]any{}
		}
		return out
	}
	members := func(n int) map[string]any {
		el := map[string]any{"type": "codec", "id": "c"}
		for i := len(el); i < n; i++ {
			el[fmt.Sprint("m", i)] = i
		}
		return el
	}
	ua := func(edit func(map[string]any)) func(t *testing.T) []byte {
		return func(t *testing.T) []byte { return marshal(t, userAgent(), edit) }
	}
	raw := func(s string) func(t *testing.T) []byte { return func(*testing.T) []byte { return []byte(s) } }
	long := strings.Repeat("i", sora.DefaultMaxIDBytes+1)
	const memory = `"total":1,"processes":2,"processes_used":3,"system":4,"atom":5,"atom_used":6,"binary":7,"code":8,"ets":9`
	erlang := func(stats string) func(t *testing.T) []byte {
		return raw(`{"type":"node.erlang-vm","timestamp":"2026-11-29T06:20:00Z","label":"l","version":"v","node_name":"n","stats":` + stats + `}`)
	}

	tests := []struct {
		name       string
		typ        string
		body       func(t *testing.T) []byte
		wantStatus int
		wantField  string
		wantErr    string
	}{
		{name: "elements at the limit are stored", typ: sora.TypeUserAgent,
			body: ua(func(m map[string]any) { m["stats"] = elements(sora.DefaultMaxElements) }), wantStatus: 204},
		{name: "one element more is too large", typ: sora.TypeUserAgent,
			body:       ua(func(m map[string]any) { m["stats"] = elements(sora.DefaultMaxElements + 1) }),
			wantStatus: 413, wantField: "stats", wantErr: fmt.Sprintf("more than %d stats elements", sora.DefaultMaxElements)},
		{name: "members at the limit are stored", typ: sora.TypeUserAgent,
			body: ua(func(m map[string]any) { m["stats"] = []any{members(sora.DefaultMaxMembers)} }), wantStatus: 204},
		{name: "one member more is too large", typ: sora.TypeUserAgent,
			body:       ua(func(m map[string]any) { m["stats"] = []any{map[string]any{}, members(sora.DefaultMaxMembers + 1)} }),
			wantStatus: 413, wantField: "stats[1]", wantErr: fmt.Sprintf("more than %d members", sora.DefaultMaxMembers)},
		{name: "too many top-level members", typ: sora.TypeUserAgent,
			body: ua(func(m map[string]any) {
				for i := len(m); i <= sora.DefaultMaxMembers; i++ {
					m[fmt.Sprint("x", i)] = nil
				}
			}),
			wantStatus: 413, wantField: "", wantErr: "top-level members"},
		{name: "element id too long", typ: sora.TypeUserAgent,
			body:       ua(func(m map[string]any) { m["stats"] = []any{map[string]any{"type": "codec", "id": long}} }),
			wantStatus: 400, wantField: "stats[0].id", wantErr: fmt.Sprintf("at most %d bytes", sora.DefaultMaxIDBytes)},
		{name: "element type too long", typ: sora.TypeUserAgent,
			body:       ua(func(m map[string]any) { m["stats"] = []any{map[string]any{"type": long, "id": "c"}} }),
			wantStatus: 400, wantField: "stats[0].type", wantErr: "bytes"},
		{name: "element id measured decoded", typ: sora.TypeUserAgent,
			body: ua(func(m map[string]any) {
				m["stats"] = []any{map[string]any{"type": "codec", "id": strings.Repeat("<", sora.DefaultMaxIDBytes)}}
			}),
			// encoding/json writes each < as \u003c: 6 bytes on the wire, 1 stored.
			wantStatus: 204},
		{name: "node_name too long", typ: sora.TypeErlangVM,
			body:       raw(`{"type":"node.erlang-vm","timestamp":"2026-11-29T06:20:00Z","label":"l","version":"v","node_name":"` + long + `","stats":[{"type":"erlang-vm-memory",` + memory + `}]}`),
			wantStatus: 400, wantField: "node_name", wantErr: "bytes"},
		{name: "NUL in the envelope", typ: sora.TypeUserAgent, body: ua(func(m map[string]any) { m["label"] = "Sora\x00" }),
			wantStatus: 400, wantField: "label", wantErr: `\u0000`},
		{name: "NUL in a stats element is the writer's to set apart", typ: sora.TypeUserAgent,
			body: ua(func(m map[string]any) {
				m["stats"] = []any{map[string]any{"type": "data-channel", "id": "D1", "label": "\x00"}}
			}), wantStatus: 204},
		{name: "erlang report with empty stats", typ: sora.TypeErlangVM, body: erlang(`[]`),
			wantStatus: 400, wantField: "stats", wantErr: "erlang-vm-memory element"},
		{name: "erlang report without a memory element", typ: sora.TypeErlangVM, body: erlang(`[{"type":"erlang-vm-gc","count":1}]`),
			wantStatus: 400, wantField: "stats", wantErr: "erlang-vm-memory element"},
		{name: "escaped erlang memory type is still checked", typ: sora.TypeErlangVM,
			body:       erlang(`[{"type":"erlang-vm-memor\u0079",` + strings.Replace(memory, `"total":1`, `"total":-5`, 1) + `}]`),
			wantStatus: 400, wantField: "stats[0].total", wantErr: "unsigned integer"},
		{name: "escaped erlang memory type is stored", typ: sora.TypeErlangVM, body: erlang(`[{"type":"erlang-vm-memor\u0079",` + memory + `}]`),
			wantStatus: 204},
		{name: "webhook bundle_id too long", typ: sora.TypeConnectionRTC,
			body: func(t *testing.T) []byte {
				return marshal(t, connectionRTC(), func(m map[string]any) { m["bundle_id"] = long })
			},
			wantStatus: 400, wantField: "bundle_id", wantErr: "bytes"},
	}
	run(t, func(t *testing.T, m mode) {
		r := startReceiver(t, m)
		stored := 0
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				body := tc.body(t)
				var a answer
				if sora.WebhookType(tc.typ) {
					a = r.postWebhook(tc.typ, body)
				} else {
					a = r.post(tc.typ, body)
				}
				if a.status != tc.wantStatus {
					t.Fatalf("got %d %s, want %d", a.status, a.body, tc.wantStatus)
				}
				if tc.wantStatus == http.StatusNoContent {
					stored++
					r.wantStored(t, tc.typ, body)
					return
				}
				wantError(t, a, tc.wantField, tc.wantErr)
			})
		}
		if n := r.msgs(); n != uint64(stored) {
			t.Errorf("stream holds %d messages, want the %d answered 204", n, stored)
		}
	})
}

func TestLimitsAreConfigurable(t *testing.T) {
	run(t, func(t *testing.T, m mode) {
		r := startReceiver(t, m, func(s *setup) { s.opts.MaxElements, s.opts.MaxMembers, s.opts.MaxIDBytes = 1, 20, 30 })
		for _, tc := range []struct {
			name       string
			edit       func(map[string]any)
			wantStatus int
			wantErr    string
		}{
			{"elements", nil, 413, "more than 1 stats elements"}, // userAgent() has two
			{"members", func(m map[string]any) { m["stats"] = []any{map[string]any{"a": 1, "b": 2}} }, 204, ""},
			{"ids", func(m map[string]any) { m["stats"] = []any{map[string]any{"id": strings.Repeat("i", 31)}} }, 400, "at most 30 bytes"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				a := r.post(sora.TypeUserAgent, marshal(t, userAgent(), tc.edit))
				if a.status != tc.wantStatus || !strings.Contains(a.errorMsg, tc.wantErr) {
					t.Errorf("got %d %s, want %d with an error containing %q", a.status, a.body, tc.wantStatus, tc.wantErr)
				}
			})
		}
	})
}

// TestGzipBodyIsRefusedUnread sends a gzip bomb, 200 MiB of zeros in about 200 KB, with
// Content-Encoding: gzip. The receiver stores bodies byte for byte and bounds what it
// stores, so it refuses any content coding before looking at the body, which it drops
// as it comes: nothing is decoded.
func TestGzipBodyIsRefusedUnread(t *testing.T) {
	var bomb bytes.Buffer
	zw, err := gzip.NewWriterLevel(&bomb, gzip.BestCompression)
	if err != nil {
		t.Fatal(err)
	}
	zeros := make([]byte, 1<<20)
	for range 200 {
		zw.Write(zeros)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	t.Logf("gzip bomb: 200 MiB in %d bytes", bomb.Len())
	run(t, func(t *testing.T, m mode) {
		r := startReceiver(t, m)
		for _, tc := range []struct{ name, encoding string }{
			{"gzip", "gzip"},
			{"identity then gzip", "identity, gzip"},
			{"deflate", "deflate"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				req := r.request(sora.TypeUserAgent, bytes.NewReader(bomb.Bytes()))
				req.Header.Set("Content-Encoding", tc.encoding)
				a := r.do(req)
				if a.status != http.StatusUnsupportedMediaType {
					t.Fatalf("got %d %s, want 415", a.status, a.body)
				}
				if a.errorField != "content-encoding" || !strings.Contains(a.errorMsg, "uncompressed") {
					t.Errorf("got field %q error %q, want field content-encoding and a hint to send it uncompressed", a.errorField, a.errorMsg)
				}
			})
		}
		// request_body_bytes observes every body taken in: none was.
		if n := r.metric("kohaku_receiver_request_body_bytes", map[string]string{"exporter_type": sora.TypeUserAgent}); n != 0 {
			t.Errorf("%v bodies read, want none", n)
		}
		req := r.request(sora.TypeUserAgent, bytes.NewReader(marshal(t, userAgent(), nil)))
		req.Header.Set("Content-Encoding", "Identity")
		if a := r.do(req); a.status != http.StatusNoContent {
			t.Errorf("Content-Encoding: identity: got %d %s, want 204", a.status, a.body)
		}
	})
}
