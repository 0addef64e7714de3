package jsonscan

import (
	"strings"
	"testing"
)

// memberByTokens reads the member at d[p] as a caller of String and Number would: the
// ends Member must give whenever it reads the member at once.
func memberByTokens(d []byte, p int) (keyEnd, end int, ok bool) {
	keyEnd, flags, fault := String(d, p)
	if fault != NoFault || flags != 0 || keyEnd >= len(d) || d[keyEnd] != ':' || keyEnd+1 >= len(d) {
		return 0, 0, false
	}
	switch v := keyEnd + 1; d[v] {
	case '"':
		end, flags, fault = String(d, v)
		return keyEnd, end, fault == NoFault && flags == 0
	case '-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9':
		end, exponent, ok := Number(d, v)
		return keyEnd, end, ok && !exponent
	}
	return 0, 0, false
}

// checkMember fails t when Member reads the member at d[p] otherwise than the tokens do.
func checkMember(t *testing.T, d []byte, p int) (read bool) {
	t.Helper()
	keyEnd, end, ok := Member(d, p)
	if !ok {
		return false
	}
	wantKey, wantEnd, wantOK := memberByTokens(d, p)
	if !wantOK || keyEnd != wantKey || end != wantEnd {
		t.Fatalf("Member(%q, %d) = %d, %d, true; by tokens %d, %d, %t", d, p, keyEnd, end, wantKey, wantEnd, wantOK)
	}
	return true
}

// TestMemberMatchesTokens holds Member to String and Number: where it reads a member at
// once, it ends the key and the value where they do. Where the vector build runs, it must
// read the common members of a stats report at once, and leave the others to the caller.
func TestMemberMatchesTokens(t *testing.T) {
	pad := strings.Repeat(" ", memberWindow)
	tests := []struct {
		member string
		read   bool // read at once where the vector build runs
	}{
		{`"packetsLost":0`, true},
		{`"kind":"video"`, true},
		{`"bytesReceived":123456789`, true},
		{`"jitter":-0.0125`, true},
		{`"":1`, true},
		{`"a":""`, true},
		{`"audioLevel":0.5`, true},
		{`"x":-0`, true},
		{`"x":01`, true}, // ends after the 0, as Number does; the caller refuses the 1
		{`"x":1e5`, false},
		{`"x":1.5E-3`, false},
		{`"x":1.`, false},
		{`"x":-`, false},
		{`"x":-a`, false},
		{`"x":.5`, false},
		{`"x": 1`, false},
		{`"x" :1`, false},
		{`"x":true`, false},
		{`"x":null`, false},
		{`"x":{}`, false},
		{`"x":[1]`, false},
		{`"a\"b":1`, false},
		{`"é":1`, false},
		{`"x":"é"`, false},
		{`"x":"a\nb"`, false},
		{"\"x\":\"a\tb\"", false},
		{"\"x\x01\":1", false},
		{`"x":"unterminated`, false},
		{`"unterminated`, false},
		// The window ends: a value must end in it, and a number's next byte be seen.
		{`"` + strings.Repeat("k", memberWindow-3) + `":1`, false},
		{`"` + strings.Repeat("k", memberWindow-4) + `":1`, false},
		{`"` + strings.Repeat("k", memberWindow-5) + `":1`, true},
		{`"x":"` + strings.Repeat("v", memberWindow-5) + `"`, false},
		{`"x":"` + strings.Repeat("v", memberWindow-6) + `"`, true},
	}
	for _, tt := range tests {
		for _, after := range []string{",", "}", ""} {
			d := []byte(tt.member + after + pad)
			got := checkMember(t, d, 0)
			if want := tt.read && memberAtOnce(); got != want {
				t.Errorf("Member(%q) read %t, want %t", tt.member+after, got, want)
			}
		}
	}
}

// TestMemberReadsOnlyItsWindow gives Member data that ends at every place of a member:
// it must read none that does not hold a whole window, and never read past the data.
func TestMemberReadsOnlyItsWindow(t *testing.T) {
	full := []byte(`"packetsLost":12,"kind":"video","jitter":0.5}` + strings.Repeat(" ", memberWindow))
	for n := range len(full) + 1 {
		d := full[:n:n] // no capacity past the data either
		for p := range n {
			if checkMember(t, d, p) && p+memberWindow > n {
				t.Fatalf("Member read %q from %d, which ends within its window", d, p)
			}
		}
	}
}

// FuzzMember holds Member to String and Number at every place of any data.
func FuzzMember(f *testing.F) {
	for _, s := range []string{`"a":1,`, `"kind":"video"}`, `"x":-0.5,"y":"z"`, `"a\"":1`, `"x":01`, `"x":1e3`} {
		f.Add([]byte(s + strings.Repeat(" ", memberWindow)))
	}
	f.Fuzz(func(t *testing.T, d []byte) {
		for p := range d {
			checkMember(t, d, p)
		}
	})
}
