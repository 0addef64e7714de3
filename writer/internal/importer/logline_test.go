package importer

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"testing"
)

func TestLineReaderBoundsLines(t *testing.T) {
	const max = 10
	tests := []struct {
		name  string
		input string
		want  []string // a line, or "!" for a line over max, "?" for a last line without newline
	}{
		{"a line of max bytes", "0123456789\n", []string{"0123456789"}},
		{"a line of max bytes with CRLF", "0123456789\r\n", []string{"0123456789"}},
		{"a line one over max", "0123456789A\nok\n", []string{"!", "ok"}},
		{"a line far over max", strings.Repeat("x", 100000) + "\nok\n", []string{"!", "ok"}},
		{"a last line without newline", "ok\nlast", []string{"ok", "?last"}},
		{"a last line over max without newline", "ok\n" + strings.Repeat("x", 11), []string{"ok", "!"}},
		{"nothing", "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lr, err := newLineReader(strings.NewReader(tt.input), max)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for {
				line, complete, err := lr.next()
				if errors.Is(err, io.EOF) {
					break
				}
				switch {
				case errors.Is(err, ErrLineTooLong):
					got = append(got, "!")
				case err != nil:
					t.Fatal(err)
				case !complete:
					got = append(got, "?"+string(line))
				default:
					got = append(got, string(line))
				}
			}
			if strings.Join(got, "|") != strings.Join(tt.want, "|") {
				t.Errorf("lines %q, want %q", got, tt.want)
			}
			if lr.n != len(tt.want) {
				t.Errorf("line number %d, want %d", lr.n, len(tt.want))
			}
		})
	}
}

// FuzzParseLine checks that any line is taken apart without a panic, and that a line
// taken apart gives back its report's members and element as valid JSON.
func FuzzParseLine(f *testing.F) {
	f.Add([]byte(`{"id":"a","timestamp":"t","rtc_id":"x","rtc_data":{"id":"x","n":1e400},"log_written":"w"}`))
	f.Add([]byte(`{"id":"a","rtc_data":{"s":"}\"{"} , "k" : [1,{"a":"]"}] }`))
	f.Add([]byte(`{"i\u0064":"a","rtc_data":{}}`))
	f.Add([]byte(`{"id":"a","rtc_data":{"x":[1,2`))
	f.Add([]byte(`{"id":"a","rtc_data":{}}x`))
	f.Fuzz(func(t *testing.T, line []byte) {
		l, err := parseLine(line)
		if err != nil {
			return
		}
		var b bytes.Buffer
		b.WriteByte('{')
		writeMembers(&b, l.envelope)
		b.WriteByte('}')
		if !json.Valid(b.Bytes()) {
			t.Fatalf("members %q of %q are not a valid object", b.Bytes(), line)
		}
		var data map[string]json.RawMessage
		if err := json.Unmarshal(l.data, &data); err != nil {
			t.Fatalf("rtc_data %q of %q: %v", l.data, line, err)
		}
		var head struct{ ID string }
		if err := json.Unmarshal(b.Bytes(), &head); err != nil || head.ID != l.id {
			t.Fatalf("id %q, but the members say %q (%v)", l.id, head.ID, err)
		}
	})
}
