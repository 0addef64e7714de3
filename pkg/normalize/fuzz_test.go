package normalize

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"strconv"
	"testing"
	"unicode/utf8"

	"kohaku/pkg/sora"
)

// FuzzLossless runs random stats arrays (element types, member names and values) through
// Message inside a valid envelope: whatever element goes in must come back equal from its
// row. The raw input is also given to Message as a whole body, which must never panic and
// fail only with a *DecodeError.
func FuzzLossless(f *testing.F) {
	addStatsSeeds(f)
	f.Fuzz(func(t *testing.T, stats []byte) {
		for _, typ := range []string{sora.TypeUserAgent, sora.TypeErlangVM} {
			if _, err := Message(typ, stats); err != nil {
				var de *DecodeError
				if !errors.As(err, &de) {
					t.Fatalf("Message(%s, input) error %T %v, want a *DecodeError", typ, err, err)
				}
			}
		}

		body := userAgentBody("01JD3K9Q2W8E5R7T1Y4U6I0F00", string(stats))
		rows, err := Message(sora.TypeUserAgent, body)
		if err != nil {
			var de *DecodeError
			if !errors.As(err, &de) {
				t.Fatalf("Message error %T %v, want a *DecodeError", err, err)
			}
			return
		}
		checkLossless(t, body, rows)
		checkRowTypes(t, rows)

		erlang := bytes.Replace(body, []byte(`"type":"connection.user-agent"`), []byte(`"type":"node.erlang-vm"`), 1)
		rows, err = Message(sora.TypeErlangVM, erlang)
		if err != nil {
			var de *DecodeError
			if !errors.As(err, &de) {
				t.Fatalf("Message(node.erlang-vm) error %T %v, want a *DecodeError", err, err)
			}
			return // the input repeated a top-level field, such as type
		}
		checkLossless(t, erlang, rows)
		checkRowTypes(t, rows)
	})
}

// addStatsSeeds adds stats arrays to f: small ones, so that the fuzzer minimizes fast.
func addStatsSeeds(f *testing.F) {
	// One element of each type.
	seen := map[string]bool{}
	for _, fx := range testBodies(f) {
		var env struct{ Stats []json.RawMessage }
		if err := json.Unmarshal(fx.Body, &env); err != nil {
			f.Fatal(err)
		}
		for _, e := range env.Stats {
			var head struct{ Type string }
			_ = json.Unmarshal(e, &head)
			if !seen[head.Type] {
				seen[head.Type] = true
				f.Add([]byte("[" + string(e) + "]"))
			}
		}
	}
	for _, ec := range edgeCases() {
		f.Add([]byte(ec.stats))
	}
	f.Add([]byte(`[{"id":"x","type":"inbound-rtp","timestamp":1,"packetsLost":-1,"jitter":1e-7,"zz":{"a":[]}}]`))
}

// FuzzNormalizerReuse runs random stats arrays, inside an envelope and as whole bodies,
// through one Normalizer between the largest fixture's body, and compares every result
// with Message's: what the Normalizer keeps from one body must never change the next.
func FuzzNormalizerReuse(f *testing.F) {
	addStatsSeeds(f)
	var large []byte
	for _, fx := range testBodies(f) {
		if fx.ExporterType == sora.TypeUserAgent && len(fx.Body) > len(large) {
			large = fx.Body
		}
	}
	f.Fuzz(func(t *testing.T, stats []byte) {
		body := userAgentBody("01JD3K9Q2W8E5R7T1Y4U6I0F01", string(stats))
		var n Normalizer
		for i, b := range [][]byte{large, body, stats, body, large, stats} {
			got, gotErr := n.Message(sora.TypeUserAgent, b)
			want, wantErr := Message(sora.TypeUserAgent, b)
			if (gotErr == nil) != (wantErr == nil) || !reflect.DeepEqual(got, want) {
				t.Fatalf("body %d: the Normalizer gave %v, %v; Message gives %v, %v", i, got, gotErr, want, wantErr)
			}
		}
	})
}

// checkRowTypes fails unless every value of rows has the Go type of its column's kind, so
// that COPY cannot fail on it.
func checkRowTypes(t *testing.T, rows *Rows) {
	t.Helper()
	for table, rs := range rows.Tables {
		l := tables.byName[table]
		for _, row := range rs {
			for k, v := range row {
				if v == nil {
					continue
				}
				var ok bool
				switch l.columns[k].kind {
				case kindInt:
					_, ok = v.(int64)
				case kindFloat:
					_, ok = v.(float64)
				case kindText:
					var s string
					s, ok = v.(string)
					ok = ok && !bytes.ContainsRune([]byte(s), 0)
				case kindBool:
					_, ok = v.(bool)
				case kindJSON:
					var b []byte
					b, ok = v.([]byte)
					// Valid JSON and UTF-8, without \u0000 or surrogate escapes, as jsonb wants.
					var facts bodyFacts
					err := checkBody(b, &facts)
					ok = ok && err == nil && !facts.surrogates && !facts.unstorable()
				default:
					ok = k == colTime
				}
				if !ok {
					t.Fatalf("%s.%s holds %T %v", table, l.columns[k].name, v, v)
				}
			}
		}
	}
}

// FuzzQuickCheck compares checkBody's fast path with its definition: valid UTF-8 and
// valid JSON as encoding/json sees it; and the facts it gathers (\u0000 and surrogate
// escapes, numbers beyond numeric, where containers end) with their definitions and the
// scanner's.
func FuzzQuickCheck(f *testing.F) {
	for _, fx := range testBodies(f) {
		f.Add(fx.Body)
	}
	for _, s := range []string{`{}`, `[]`, `{"a":[1,-0.5e+3,true,false,null,"\u00e9\ud83d\ude00"]}`, `"\u0000"`,
		`{"a":1,}`, `[1 2]`, `01`, `1.`, `-`, `"\x"`, "\"\xff\"", `{"a" 1}`, ` [ { } , [ ] ] `, `"\uD800"`, `1e`, `[`, `"`,
		`[1e131073]`, `[1e-16384]`, `[0e1073741823]`, `{"a":{"b":[]},"c":[{}],"d":{}}`, `{"\\u0000":"\\\u0000"}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) { checkQuick(t, b) })
}

// checkQuick fails unless quickCheck agrees with its definition about b.
func checkQuick(t *testing.T, b []byte) {
	t.Helper()
	var facts bodyFacts
	ok := quickCheck(b, &facts)
	if want := utf8.Valid(b) && json.Valid(b); ok != want {
		t.Fatalf("quickCheck(%q) = %t, want %t", b, ok, want)
	}
	if !ok {
		if slowCheck(b) == nil {
			t.Fatalf("slowCheck(%q) finds nothing wrong, quickCheck refuses it", b)
		}
		return
	}
	nul, surrogates := escapes(b)
	escaped := bytes.IndexByte(b, '\\') >= 0 // valid JSON has a backslash only in an escape
	if facts.nul != nul || facts.surrogates != surrogates || facts.bigNumber != !numbersFit(b) || facts.escaped != escaped {
		t.Fatalf("quickCheck(%q): nul %t, surrogates %t, big number %t, escaped %t; want %t, %t, %t, %t",
			b, facts.nul, facts.surrogates, facts.bigNumber, facts.escaped, nul, surrogates, !numbersFit(b), escaped)
	}
	// The scanner walks the containers itself (no ends), with the body's escapes known.
	sc := &scanner{d: b, facts: &bodyFacts{escaped: facts.escaped}}
	for _, s := range facts.ends[:facts.nEnds] {
		if c := b[s.start]; c != '{' && c != '[' {
			t.Fatalf("quickCheck(%q) recorded an end for %q at %d, not a container", b, c, s.start)
		}
		if e := sc.valueEnd(s.start); e != s.end {
			t.Fatalf("quickCheck(%q) says the value at %d ends at %d, the scanner says %d", b, s.start, s.end, e)
		}
	}
}

// escapes reports whether a valid JSON text escapes U+0000 and whether it escapes a
// UTF-16 surrogate.
func escapes(b []byte) (nul, surrogate bool) {
	for k := 0; k+6 <= len(b); k++ {
		if b[k] != '\\' {
			continue
		}
		if b[k+1] == 'u' {
			v, _ := strconv.ParseUint(string(b[k+2:k+6]), 16, 16)
			nul = nul || v == 0
			surrogate = surrogate || (v >= 0xD800 && v <= 0xDFFF)
		}
		k++ // the escaped byte is not a backslash that starts an escape
	}
	return nul, surrogate
}

// hasNULEscape reports whether a valid JSON text escapes U+0000.
func hasNULEscape(b []byte) bool {
	nul, _ := escapes(b)
	return nul
}

// numbersFit reports whether every number of a valid JSON text fits numeric.
func numbersFit(b []byte) bool {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	for {
		tok, err := dec.Token()
		if err != nil {
			return true
		}
		if n, ok := tok.(json.Number); ok && !fitsNumeric([]byte(n)) {
			return false
		}
	}
}
