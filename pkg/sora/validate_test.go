package sora_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"kohaku/pkg/sora"
	"kohaku/testsupport/fixtures"
)

// userAgent returns a valid connection.user-agent body with the member key replaced by
// raw JSON (or removed when raw is "").
func userAgent(key, raw string) []byte {
	members := []struct{ k, v string }{
		{"type", `"connection.user-agent"`},
		{"id", `"01J2V6Q3Z1C8V4X7H9K2M5N8PQ"`},
		{"timestamp", `"2026-11-29T06:20:00.123456Z"`},
		{"label", `"WebRTC SFU Sora"`},
		{"version", `"2025.1.0"`},
		{"node_name", `"sora@127.0.0.1"`},
		{"multistream", `true`},
		{"simulcast", `false`},
		{"spotlight", `false`},
		{"role", `"sendrecv"`},
		{"channel_id", `"sora"`},
		{"client_id", `"client-1"`},
		{"session_id", `"01J2V6Q3Z1C8V4X7H9K2M5N8PR"`},
		{"connection_id", `"01J2V6Q3Z1C8V4X7H9K2M5N8PS"`},
		{"stats", `[{"type":"codec","id":"c1","timestamp":1.5e12,"mimeType":"video/VP8"}]`},
	}
	var b strings.Builder
	b.WriteString("{")
	first := true
	found := false
	for _, m := range members {
		v := m.v
		if m.k == key {
			found = true
			if raw == "" {
				continue
			}
			v = raw
		}
		if !first {
			b.WriteString(",")
		}
		first = false
		b.WriteString(`"` + m.k + `":` + v)
	}
	if !found && raw != "" {
		b.WriteString(`,"` + key + `":` + raw)
	}
	b.WriteString("}")
	return []byte(b.String())
}

func erlangVM(stats string) []byte {
	return []byte(`{"type":"node.erlang-vm","timestamp":"2026-11-29T06:20:00Z","label":"l","version":"v","node_name":"n","stats":` + stats + `}`)
}

const goodMemory = `"total":1,"processes":2,"processes_used":3,"system":4,"atom":5,"atom_used":6,"binary":7,"code":8,"ets":9`

func TestValidateAcceptsValidMessages(t *testing.T) {
	tests := []struct {
		name string
		typ  string
		body []byte
	}{
		{"user agent", sora.TypeUserAgent, userAgent("", "")},
		{"unknown envelope field kept", sora.TypeUserAgent, userAgent("bundle_id", `{"any":[1,2,{"x":null}]}`)},
		{"id is optional", sora.TypeUserAgent, userAgent("id", "")},
		{"id may be null", sora.TypeUserAgent, userAgent("id", "null")},
		{"empty stats", sora.TypeUserAgent, userAgent("stats", "[]")},
		{"stats elements without type", sora.TypeUserAgent, userAgent("stats", `[{"x":1},{}]`)},
		{"escaped role", sora.TypeUserAgent, userAgent("role", `"send\u0072ecv"`)},
		{"escaped key", sora.TypeUserAgent, []byte(strings.Replace(string(userAgent("", "")), `"role"`, `"\u0072ole"`, 1))},
		{"timestamp with offset", sora.TypeUserAgent, userAgent("timestamp", `"2026-11-29T15:20:00+09:00"`)},
		{"non-ASCII ids", sora.TypeUserAgent, userAgent("session_id", `"ああああああああああああああああああああああああああ"`)},
		{"spaces everywhere", sora.TypeUserAgent, []byte(" \n" + strings.ReplaceAll(string(userAgent("", "")), ",", " ,\n\t") + " \r\n")},
		{"erlang vm", sora.TypeErlangVM, erlangVM(`[{"type":"erlang-vm-memory",` + goodMemory + `}]`)},
		{"NUL in a stats element", sora.TypeUserAgent, userAgent("stats", `[{"type":"data-channel","id":"D1","label":"\u0000"}]`)},
		{"stats number beyond numeric", sora.TypeUserAgent, userAgent("stats", `[{"type":"codec","id":"c","x":0e1073741823}]`)},
		{"envelope number with a modest exponent", sora.TypeUserAgent, userAgent("extra", `[1.5e-300,2E+300]`)},
		{"erlang vm escaped type", sora.TypeErlangVM, erlangVM(`[{"type":"erlang-vm-memor\u0079",` + goodMemory + `}]`)},
		{"erlang vm other element", sora.TypeErlangVM, erlangVM(`[{"type":"erlang-vm-gc","count":-1.5},{"type":"erlang-vm-memory",` + goodMemory + `}]`)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := sora.Validate(tt.typ, tt.body); err != nil {
				t.Errorf("Validate(%s) = %v, want nil", tt.body, err)
			}
		})
	}
}

func TestValidateFixtures(t *testing.T) {
	all, err := fixtures.All()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range all {
		if err := sora.Validate(f.ExporterType, f.Body); err != nil {
			t.Errorf("fixture %s: %v", f.Name, err)
		}
	}
}

func TestValidateRejectsWithField(t *testing.T) {
	deep := strings.Repeat("[", 70) + strings.Repeat("]", 70)
	tests := []struct {
		name      string
		typ       string
		body      []byte
		wantField string
		wantMsg   string
	}{
		{"empty body", sora.TypeUserAgent, nil, "", "empty body"},
		{"only spaces", sora.TypeUserAgent, []byte("  \n"), "", "empty body"},
		{"not an object", sora.TypeUserAgent, []byte(`[1,2]`), "", "JSON object"},
		{"broken JSON", sora.TypeUserAgent, []byte(`{"type":"connection.user-agent",`), "", "invalid JSON"},
		{"trailing data", sora.TypeUserAgent, append(userAgent("", ""), "{}"...), "", "after the object"},
		{"bad literal", sora.TypeUserAgent, userAgent("multistream", "tru"), "multistream", "invalid JSON"},
		{"bad number", sora.TypeUserAgent, userAgent("extra", "01"), "", "invalid JSON"},
		{"bad escape", sora.TypeUserAgent, userAgent("label", `"a\qb"`), "label", "bad escape"},
		{"control character", sora.TypeUserAgent, userAgent("label", "\"a\x01b\""), "label", "control character"},
		{"invalid UTF-8", sora.TypeUserAgent, userAgent("label", "\"a\xffb\""), "label", "UTF-8"},
		{"invalid UTF-8 in unknown field", sora.TypeUserAgent, userAgent("bundle_id", "\"\xc3\x28\""), "bundle_id", "UTF-8"},
		{"deep nesting", sora.TypeUserAgent, userAgent("bundle_id", deep), "bundle_id", "nesting"},
		{"deep nesting in stats", sora.TypeUserAgent, userAgent("stats", "[{\"a\":"+deep+"}]"), "stats", "nesting"},
		{"type missing", sora.TypeUserAgent, userAgent("type", ""), "type", "required"},
		{"type differs from header", sora.TypeUserAgent, userAgent("type", `"node.erlang-vm"`), "type", "header"},
		{"timestamp missing", sora.TypeUserAgent, userAgent("timestamp", ""), "timestamp", "required"},
		{"timestamp not a time", sora.TypeUserAgent, userAgent("timestamp", `"yesterday"`), "timestamp", "RFC 3339"},
		{"timestamp a number", sora.TypeUserAgent, userAgent("timestamp", `1700000000`), "timestamp", "must be a string"},
		{"id a number", sora.TypeUserAgent, userAgent("id", `42`), "id", "must be a string"},
		{"label missing", sora.TypeUserAgent, userAgent("label", ""), "label", "required"},
		{"version null", sora.TypeUserAgent, userAgent("version", "null"), "version", "not null"},
		{"node_name missing", sora.TypeUserAgent, userAgent("node_name", ""), "node_name", "required"},
		{"multistream missing", sora.TypeUserAgent, userAgent("multistream", ""), "multistream", "required"},
		{"multistream null", sora.TypeUserAgent, userAgent("multistream", "null"), "multistream", "must be a boolean"},
		{"simulcast a string", sora.TypeUserAgent, userAgent("simulcast", `"false"`), "simulcast", "must be a boolean"},
		{"spotlight a number", sora.TypeUserAgent, userAgent("spotlight", `0`), "spotlight", "must be a boolean"},
		{"role outside the three", sora.TypeUserAgent, userAgent("role", `"upstream"`), "role", "sendrecv, sendonly or recvonly"},
		{"role missing", sora.TypeUserAgent, userAgent("role", ""), "role", "required"},
		{"channel_id empty", sora.TypeUserAgent, userAgent("channel_id", `""`), "channel_id", "1 to 255 bytes"},
		{"channel_id overlong", sora.TypeUserAgent, userAgent("channel_id", `"`+strings.Repeat("c", 256)+`"`), "channel_id", "1 to 255 bytes"},
		{"client_id overlong", sora.TypeUserAgent, userAgent("client_id", `"`+strings.Repeat("c", 256)+`"`), "client_id", "1 to 255 bytes"},
		{"client_id missing", sora.TypeUserAgent, userAgent("client_id", ""), "client_id", "required"},
		{"session_id short", sora.TypeUserAgent, userAgent("session_id", `"01J2V6Q3Z1C8V4X7H9K2M5N8P"`), "session_id", "26 characters"},
		{"connection_id long", sora.TypeUserAgent, userAgent("connection_id", `"01J2V6Q3Z1C8V4X7H9K2M5N8PQX"`), "connection_id", "26 characters"},
		{"connection_id missing", sora.TypeUserAgent, userAgent("connection_id", ""), "connection_id", "required"},
		{"stats missing", sora.TypeUserAgent, userAgent("stats", ""), "stats", "required"},
		{"stats an object", sora.TypeUserAgent, userAgent("stats", `{}`), "stats", "must be an array"},
		{"stats element a number", sora.TypeUserAgent, userAgent("stats", `[{},1]`), "stats[1]", "must be an object"},
		{"erlang memory negative", sora.TypeErlangVM, erlangVM(`[{"type":"erlang-vm-memory",` + strings.Replace(goodMemory, `"ets":9`, `"ets":-9`, 1) + `}]`), "stats[0].ets", "unsigned integer"},
		{"erlang memory fraction", sora.TypeErlangVM, erlangVM(`[{"type":"erlang-vm-memory",` + strings.Replace(goodMemory, `"total":1`, `"total":1.5`, 1) + `}]`), "stats[0].total", "unsigned integer"},
		{"erlang memory beyond bigint", sora.TypeErlangVM, erlangVM(`[{"type":"erlang-vm-memory",` + strings.Replace(goodMemory, `"code":8`, `"code":9223372036854775808`, 1) + `}]`), "stats[0].code", "unsigned integer"},
		{"erlang memory missing", sora.TypeErlangVM, erlangVM(`[{"type":"erlang-vm-memory",` + strings.Replace(goodMemory, `,"binary":7`, ``, 1) + `}]`), "stats[0].binary", "required"},
		{"NUL in an envelope string", sora.TypeUserAgent, userAgent("label", `"Sora\u0000"`), "label", "\\u0000"},
		{"NUL in an unknown envelope member", sora.TypeUserAgent, userAgent("extra", `{"a":["\u0000"]}`), "extra", "\\u0000"},
		{"NUL in a nested member name", sora.TypeUserAgent, userAgent("extra", `{"a\u0000":1}`), "extra", "\\u0000"},
		{"NUL in a top-level member name", sora.TypeUserAgent, userAgent(`a\u0000`, `1`), "", "\\u0000"},
		{"envelope number beyond numeric", sora.TypeUserAgent, userAgent("extra", `[0e1073741823]`), "extra", "numeric"},
		{"erlang memory type escaped", sora.TypeErlangVM, erlangVM(`[{"type":"erlang-vm-memor\u0079",` + strings.Replace(goodMemory, `"total":1`, `"total":-5`, 1) + `}]`), "stats[0].total", "unsigned integer"},
		{"erlang memory figure name escaped", sora.TypeErlangVM, erlangVM(`[{"type":"erlang-vm-memory",` + goodMemory + `,"tot\u0061l":-5}]`), "stats[0].total", "unsigned integer"},
		{"erlang memory type repeated", sora.TypeErlangVM, erlangVM(`[{"type":"x","type":"erlang-vm-memory","total":-5}]`), "stats[0].total", "unsigned integer"},
		{"erlang stats empty", sora.TypeErlangVM, erlangVM(`[]`), "stats", "erlang-vm-memory element"},
		{"erlang stats without memory", sora.TypeErlangVM, erlangVM(`[{"type":"erlang-vm-gc"},{"type":"erlang-vm-memory","type":"x"}]`), "stats", "erlang-vm-memory element"},
		{"erlang last stats empty", sora.TypeErlangVM, []byte(strings.TrimSuffix(string(erlangVM(`[{"type":"erlang-vm-memory",`+goodMemory+`}]`)), "}") + `,"stats":[]}`), "stats", "erlang-vm-memory element"},
		{"erlang timestamp missing", sora.TypeErlangVM, []byte(`{"type":"node.erlang-vm","label":"l","version":"v","node_name":"n","stats":[{"type":"erlang-vm-memory",` + goodMemory + `}]}`), "timestamp", "required"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := sora.Validate(tt.typ, tt.body)
			var fe *sora.FieldError
			if !errors.As(err, &fe) {
				t.Fatalf("Validate = %v, want a *FieldError", err)
			}
			if fe.Field != tt.wantField || !strings.Contains(fe.Msg, tt.wantMsg) {
				t.Errorf("Validate = field %q msg %q, want field %q msg containing %q", fe.Field, fe.Msg, tt.wantField, tt.wantMsg)
			}
		})
	}
}

func TestValidateUnknownType(t *testing.T) {
	for _, typ := range []string{"", "connection.user-agen", "node.erlang-vm.x"} {
		if err := sora.Validate(typ, userAgent("", "")); !errors.Is(err, sora.ErrUnknownType) {
			t.Errorf("Validate(%q) = %v, want ErrUnknownType", typ, err)
		}
	}
}

// TestValidateAgreesWithEncodingJSON pins the scanner to the standard library's idea of valid
// JSON on inputs where the envelope is otherwise fine.
func TestValidateAgreesWithEncodingJSON(t *testing.T) {
	values := []string{`1`, `-0`, `-0.5e+10`, `1E5`, `.5`, `1.`, `+1`, `0x10`, `"\u00e9"`, `"\ud83d\ude00"`, `"\u12"`,
		`[]`, `[1,]`, `{"a":1,}`, `{"a" 1}`, `{1:2}`, `[1 2]`, `nul`, `truefalse`, `"a"b"`, `"\/"`}
	for _, v := range values {
		body := userAgent("bundle_id", v)
		wantValid := json.Valid(body)
		err := sora.Validate(sora.TypeUserAgent, body)
		if gotValid := err == nil; gotValid != wantValid {
			t.Errorf("value %s: Validate = %v, encoding/json valid = %v", v, err, wantValid)
		}
	}
}

func TestFieldErrorJSON(t *testing.T) {
	b, err := json.Marshal(&sora.FieldError{Field: "role", Msg: "must be sendrecv, sendonly or recvonly"})
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"field":"role","error":"must be sendrecv, sendonly or recvonly"}`; string(b) != want {
		t.Errorf("JSON = %s, want %s", b, want)
	}
}

func TestValidateDoesNotAllocate(t *testing.T) {
	body := userAgent("", "")
	allocs := testing.AllocsPerRun(100, func() {
		if err := sora.Validate(sora.TypeUserAgent, body); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Errorf("Validate allocated %v times per run, want 0", allocs)
	}
}

func FuzzValidate(f *testing.F) {
	f.Add(sora.TypeUserAgent, userAgent("", ""))
	f.Add(sora.TypeErlangVM, erlangVM(`[{"type":"erlang-vm-memory",`+goodMemory+`}]`))
	f.Add(sora.TypeUserAgent, userAgent("stats", `[{"a":[{"b":"\ud83d"}]}]`))
	f.Add(sora.TypeConnectionRTC, webhook("", ""))
	if all, err := fixtures.All(); err == nil {
		for _, fx := range all {
			f.Add(fx.ExporterType, fx.Body)
		}
	}
	f.Fuzz(func(t *testing.T, typ string, body []byte) {
		err := sora.Validate(typ, body)
		if err == nil && !json.Valid(body) {
			t.Errorf("Validate accepted invalid JSON %q", body)
		}
		var fe *sora.FieldError
		if err != nil && !errors.As(err, &fe) && !errors.Is(err, sora.ErrUnknownType) {
			t.Errorf("Validate returned %T %v", err, err)
		}
	})
}

func BenchmarkValidate(b *testing.B) {
	all, err := fixtures.All()
	if err != nil {
		b.Fatal(err)
	}
	f := all[0]
	for _, fx := range all { // the largest report is the realistic worst case
		if len(fx.Body) > len(f.Body) {
			f = fx
		}
	}
	b.Logf("fixture %s, %d bytes", f.Name, len(f.Body))
	b.SetBytes(int64(len(f.Body)))
	b.ReportAllocs()
	for b.Loop() {
		if err := sora.Validate(f.ExporterType, f.Body); err != nil {
			b.Fatal(err)
		}
	}
}

func TestFieldErrorOutlivesTheBody(t *testing.T) {
	body := userAgent("bundle_id", "\"\xc3\x28\"")
	err := sora.Validate(sora.TypeUserAgent, body)
	for i := range body {
		body[i] = 'x' // the caller reuses its buffer
	}
	var fe *sora.FieldError
	if !errors.As(err, &fe) || fe.Field != "bundle_id" {
		t.Errorf("after the body was overwritten: %v, want field bundle_id", err)
	}
}
