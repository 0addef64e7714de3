package jsonscan

import (
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzValue compares Walker.Value over a whole text with encoding/json: valid JSON
// (encoding/json's nesting limit included) in valid UTF-8.
func FuzzValue(f *testing.F) {
	for _, s := range []string{`{}`, `[]`, `{"a":[1,-0.5e+3,true,false,null,"\u00e9\ud83d\ude00"]}`, `"\u0000"`,
		`{"a":1,}`, `[1 2]`, `01`, `1.`, `-`, `"\x"`, "\"\xff\"", `{"a" 1}`, ` [ { } , [ ] ] `, `"\uD800"`, `1e`,
		`[`, `"`, `nul`, `{"a":{"b":[]},"c":[{}],"d":{}}`, strings.Repeat("[", 10001) + strings.Repeat("]", 10001)} {
		f.Add([]byte(s))
	}
	// Members that Member reads at once, or declines, with room for its window after them.
	for _, s := range []string{`{"a":1,"kind":"video","j":-0.5,"t":{"n":0}}`, `{"a":01}`, `{"a":1.}`, `{"a":"\u0041"}`, `{"a":1e5,"b":-}`} {
		f.Add([]byte(s + strings.Repeat(" ", memberWindow)))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		w := Walker{MaxDepth: StdMaxDepth}
		end, _, ok := w.Value(b, 0)
		got := ok && SkipSpace(b, end) == len(b)
		if want := json.Valid(b) && utf8.Valid(b); got != want {
			t.Fatalf("Value(%q) valid = %t, encoding/json says %t", b, got, want)
		}
	})
}

// FuzzUnescape compares String and Unescape on the contents of one string with
// encoding/json's decoding of it, and String's flags with the escapes it holds.
func FuzzUnescape(f *testing.F) {
	for _, s := range []string{``, `abc`, `\"\\\/\b\f\n\r\t`, `\u00e9`, `\ud83d\ude00`, `\ud83d`, `\ude00x`,
		`\ud83d\u0041`, `\u0000`, `é`, "\xff", `\x`, `\u12`, `a"b`, "\t"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		quoted := []byte(`"` + string(raw) + `"`)
		end, flags, fault := String(quoted, 0)
		ok := fault == NoFault && end == len(quoted)
		if want := json.Valid(quoted) && utf8.Valid(quoted); ok != want {
			t.Fatalf("String(%q) = %d, fault %d; encoding/json valid = %t", quoted, end, fault, want)
		}
		if !ok {
			return
		}
		var want string
		if err := json.Unmarshal(quoted, &want); err != nil {
			t.Fatal(err)
		}
		if got := string(Unescape(nil, raw)); got != want {
			t.Errorf("Unescape(%q) = %q, encoding/json decodes %q", raw, got, want)
		}
		if wantFlags := escapeFlags(raw); flags != wantFlags {
			t.Errorf("String(%q) flags = %b, want %b", quoted, flags, wantFlags)
		}
	})
}

// escapeFlags returns the flags of the well-formed string contents raw, escape by escape.
func escapeFlags(raw []byte) StringFlags {
	var f StringFlags
	for i := 0; i < len(raw); i++ {
		if raw[i] != '\\' {
			continue
		}
		f |= Escaped
		if raw[i+1] == 'u' {
			var v uint16
			for _, c := range raw[i+2 : i+6] {
				v <<= 4
				switch {
				case c <= '9':
					v |= uint16(c - '0')
				default:
					v |= uint16(c|0x20-'a') + 10
				}
			}
			switch {
			case v == 0:
				f |= NULEscape
			case v >= 0xD800 && v <= 0xDFFF:
				f |= SurrogateEscape
			}
			i += 4
		}
		i++
	}
	return f
}
