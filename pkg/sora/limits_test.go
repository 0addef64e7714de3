package sora_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	"kohaku/pkg/sora"
	"kohaku/testsupport/fixtures"
)

// largeRoom returns the connection.user-agent report of one participant of a multistream
// room of n participants, made from the largest Chromium fixture: its own elements, and for
// each of the n-1 others' audio and video an inbound-rtp, a remote-outbound-rtp and a codec
// element, copies of the fixture's with ids of their own. Chrome shares codecs within a
// transport, so a real report has fewer: this is the upper bound.
func largeRoom(t testing.TB, n int) []byte {
	t.Helper()
	all, err := fixtures.ByType(sora.TypeUserAgent)
	if err != nil {
		t.Fatal(err)
	}
	fx := all[0]
	for _, f := range all {
		if len(f.Body) > len(fx.Body) {
			fx = f
		}
	}
	dec := json.NewDecoder(bytes.NewReader(fx.Body))
	dec.UseNumber()
	var report map[string]any
	if err := dec.Decode(&report); err != nil {
		t.Fatal(err)
	}
	stats := report["stats"].([]any)
	// The elements that one received track adds, by kind.
	perTrack := map[string][]map[string]any{}
	for _, e := range stats {
		el := e.(map[string]any)
		kind, _ := el["kind"].(string)
		switch el["type"] {
		case "inbound-rtp", "remote-outbound-rtp":
			perTrack[kind] = append(perTrack[kind], el)
		}
	}
	for _, e := range stats { // the codec of each inbound-rtp
		el := e.(map[string]any)
		for kind, els := range perTrack {
			for _, in := range els {
				if in["type"] == "inbound-rtp" && in["codecId"] == el["id"] {
					perTrack[kind] = append(perTrack[kind], el)
				}
			}
		}
	}
	if len(perTrack["audio"]) != 3 || len(perTrack["video"]) != 3 {
		t.Fatalf("fixture %s: want an inbound-rtp, a remote-outbound-rtp and a codec per kind, got %d audio and %d video",
			fx.Name, len(perTrack["audio"]), len(perTrack["video"]))
	}
	for p := 1; p < n; p++ {
		for _, kind := range []string{"audio", "video"} {
			for _, el := range perTrack[kind] {
				c := make(map[string]any, len(el))
				for k, v := range el {
					c[k] = v
				}
				c["id"] = fmt.Sprintf("%s-p%d", el["id"], p)
				stats = append(stats, c)
			}
		}
	}
	report["stats"] = stats
	b, err := json.Marshal(report)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// roomFigures returns the number of stats elements of a report and the most members of one.
func roomFigures(t testing.TB, body []byte) (elements, members int) {
	t.Helper()
	var report struct{ Stats []map[string]json.RawMessage }
	if err := json.Unmarshal(body, &report); err != nil {
		t.Fatal(err)
	}
	for _, el := range report.Stats {
		members = max(members, len(el))
	}
	return len(report.Stats), members
}

// TestDefaultLimitsFitALargeRoom measures the figures that the defaults of Limits are
// sized on (their doc comment quotes them) and holds the defaults to a margin over them.
func TestDefaultLimitsFitALargeRoom(t *testing.T) {
	body := largeRoom(t, 200)
	elements, members := roomFigures(t, body)
	t.Logf("200-participant multistream report: %d stats elements, %d bytes, at most %d members in one element",
		elements, len(body), members)
	if err := sora.Validate(sora.TypeUserAgent, body); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	if sora.DefaultMaxElements < 4*elements {
		t.Errorf("DefaultMaxElements %d is less than 4 times the %d elements of a 200-participant room", sora.DefaultMaxElements, elements)
	}
	if sora.DefaultMaxMembers < 5*members {
		t.Errorf("DefaultMaxMembers %d is less than 5 times the %d members of the largest element", sora.DefaultMaxMembers, members)
	}
}

func TestLimits(t *testing.T) {
	elements := func(n int, el string) string {
		return "[" + strings.TrimSuffix(strings.Repeat(el+",", n), ",") + "]"
	}
	members := func(n int) string {
		var b strings.Builder
		b.WriteString(`{"type":"codec","id":"c"`)
		for i := range n - 2 {
			fmt.Fprintf(&b, `,"m%d":%d`, i, i)
		}
		return b.String() + "}"
	}
	envelopeMembers := func(n int) []byte { // n members in all, padded with unknown ones
		b := userAgent("", "")
		var pad strings.Builder
		for i := range n - 15 {
			fmt.Fprintf(&pad, `,"x%d":null`, i)
		}
		return append(b[:len(b)-1], pad.String()+"}"...)
	}
	id := func(n int) string { return `"` + strings.Repeat("i", n) + `"` }
	// Sora's envelope ids are 26 characters.
	small := sora.Limits{MaxElements: 3, MaxMembers: 20, MaxIDBytes: 26}
	memory := `{"type":"erlang-vm-memory",` + goodMemory + `}`

	tests := []struct {
		name      string
		limits    sora.Limits
		typ       string
		body      []byte
		wantLimit bool // a *LimitError, else a *FieldError when wantField is set
		wantField string
		wantMsg   string
	}{
		{name: "elements at the limit", limits: small, typ: sora.TypeUserAgent, body: userAgent("stats", elements(3, `{}`))},
		{name: "one element too many", limits: small, typ: sora.TypeUserAgent, body: userAgent("stats", elements(4, `{}`)),
			wantLimit: true, wantField: "stats", wantMsg: "more than 3 stats elements"},
		{name: "erlang elements too many", limits: small, typ: sora.TypeErlangVM, body: erlangVM(elements(4, memory)),
			wantLimit: true, wantField: "stats", wantMsg: "more than 3 stats elements"},
		{name: "members at the limit", limits: small, typ: sora.TypeUserAgent, body: userAgent("stats", "["+members(20)+"]")},
		{name: "one member too many", limits: small, typ: sora.TypeUserAgent, body: userAgent("stats", "[{},"+members(21)+"]"),
			wantLimit: true, wantField: "stats[1]", wantMsg: "more than 20 members"},
		{name: "erlang members too many", limits: small, typ: sora.TypeErlangVM, body: erlangVM("[" + strings.Replace(members(21), `"codec"`, `"erlang-vm-gc"`, 1) + "]"),
			wantLimit: true, wantField: "stats[0]", wantMsg: "more than 20 members"},
		{name: "nested members are not counted", limits: small, typ: sora.TypeUserAgent, body: userAgent("stats", `[{"r":`+members(30)+`}]`)},
		{name: "envelope members at the limit", limits: sora.Limits{MaxMembers: 20}, typ: sora.TypeUserAgent, body: envelopeMembers(20)},
		{name: "envelope members too many", limits: sora.Limits{MaxMembers: 20}, typ: sora.TypeUserAgent, body: envelopeMembers(21),
			wantLimit: true, wantField: "", wantMsg: "more than 20 top-level members"},
		{name: "element id at the limit", limits: small, typ: sora.TypeUserAgent, body: userAgent("stats", `[{"type":"codec","id":`+id(26)+`}]`)},
		{name: "element id too long", limits: small, typ: sora.TypeUserAgent, body: userAgent("stats", `[{},{"type":"codec","id":`+id(27)+`}]`),
			wantField: "stats[1].id", wantMsg: "at most 26 bytes"},
		{name: "element type too long", limits: small, typ: sora.TypeUserAgent, body: userAgent("stats", `[{"type":"remote-outbound-rtp-of-a-kind"}]`),
			wantField: "stats[0].type", wantMsg: "at most 26 bytes"},
		{name: "repeated id checked", limits: small, typ: sora.TypeUserAgent, body: userAgent("stats", `[{"id":`+id(27)+`,"id":"x"}]`),
			wantField: "stats[0].id", wantMsg: "at most 26 bytes"},
		{name: "element id counted decoded", limits: small, typ: sora.TypeUserAgent, body: userAgent("stats", `[{"id":"`+strings.Repeat(`\u0069`, 26)+`"}]`)},
		{name: "element id counted in UTF-8 bytes", limits: small, typ: sora.TypeUserAgent, body: userAgent("stats", `[{"id":"`+strings.Repeat(`\u3042`, 9)+`"}]`),
			wantField: "stats[0].id", wantMsg: "at most 26 bytes"},
		{name: "element id under an escaped name", limits: small, typ: sora.TypeUserAgent, body: userAgent("stats", `[{"\u0069d":`+id(27)+`}]`),
			wantField: "stats[0].id", wantMsg: "at most 26 bytes"},
		{name: "element id not a string", limits: small, typ: sora.TypeUserAgent, body: userAgent("stats", `[{"id":123456789012}]`)},
		{name: "erlang element id too long", limits: small, typ: sora.TypeErlangVM, body: erlangVM(`[{"type":"erlang-vm-gc","id":` + id(27) + `},` + memory + `]`),
			wantField: "stats[0].id", wantMsg: "at most 26 bytes"},
		{name: "exporter id too long", limits: small, typ: sora.TypeUserAgent, body: userAgent("id", id(27)),
			wantField: "id", wantMsg: "at most 26 bytes"},
		{name: "exporter id may be empty", limits: small, typ: sora.TypeUserAgent, body: userAgent("id", `""`)},
		{name: "webhook bundle_id too long", limits: small, typ: sora.TypeConnectionRTC, body: webhook("bundle_id", id(27)),
			wantField: "bundle_id", wantMsg: "1 to 26 bytes"},
		{name: "node_name too long", limits: small, typ: sora.TypeErlangVM, body: []byte(strings.Replace(string(erlangVM("["+memory+"]")), `"node_name":"n"`, `"node_name":`+id(27), 1)),
			wantField: "node_name", wantMsg: "at most 26 bytes"},
		{name: "channel_id keeps 255 bytes", limits: small, typ: sora.TypeUserAgent, body: userAgent("channel_id", id(255))},
		{name: "zero limits are the defaults", typ: sora.TypeUserAgent, body: userAgent("stats", elements(sora.DefaultMaxElements+1, `{}`)),
			wantLimit: true, wantField: "stats", wantMsg: fmt.Sprintf("more than %d stats elements", sora.DefaultMaxElements)},
		{name: "default id bound", typ: sora.TypeUserAgent, body: userAgent("stats", `[{"id":`+id(sora.DefaultMaxIDBytes+1)+`}]`),
			wantField: "stats[0].id", wantMsg: fmt.Sprintf("at most %d bytes", sora.DefaultMaxIDBytes)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.limits.Validate(tt.typ, tt.body)
			var le *sora.LimitError
			var fe *sora.FieldError
			switch {
			case tt.wantMsg == "":
				if err != nil {
					t.Fatalf("Validate = %v, want nil", err)
				}
			case tt.wantLimit:
				if !errors.As(err, &le) {
					t.Fatalf("Validate = %v, want a *LimitError", err)
				}
				if le.Field != tt.wantField || le.Msg != tt.wantMsg {
					t.Errorf("Validate = field %q msg %q, want field %q msg %q", le.Field, le.Msg, tt.wantField, tt.wantMsg)
				}
			default:
				if !errors.As(err, &fe) {
					t.Fatalf("Validate = %v, want a *FieldError", err)
				}
				if fe.Field != tt.wantField || !strings.Contains(fe.Msg, tt.wantMsg) {
					t.Errorf("Validate = field %q msg %q, want field %q msg containing %q", fe.Field, fe.Msg, tt.wantField, tt.wantMsg)
				}
			}
		})
	}
}

func TestLimitErrorJSON(t *testing.T) {
	b, err := json.Marshal(&sora.LimitError{Field: "stats", Msg: "more than 5000 stats elements"})
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"field":"stats","error":"more than 5000 stats elements"}`; string(b) != want {
		t.Errorf("JSON = %s, want %s", b, want)
	}
}

func BenchmarkValidateLargeRoom(b *testing.B) {
	body := largeRoom(b, 200)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if err := sora.Validate(sora.TypeUserAgent, body); err != nil {
			b.Fatal(err)
		}
	}
}
