package jsonscan

import (
	"strings"
	"testing"
)

func TestValueChecksOneValue(t *testing.T) {
	tests := []struct {
		name     string
		in       string
		maxDepth int
		end      int // for a valid value
		ok       bool
	}{
		{"literals", `true`, 1, 4, true},
		{"spaces before", " \t\r\nnull", 1, 8, true},
		{"stops after the value", `false ,`, 1, 5, true},
		{"number", `-1.5e3]`, 1, 6, true},
		{"string", `"a"b`, 1, 3, true},
		{"object", `{"a" : [1, {"b":null}] , "c":{}}`, 3, 32, true},
		{"empty containers", `[{},[],[{}]]`, 3, 12, true},
		{"deep enough", `[[[]]]`, 3, 6, true},
		{"too deep", `[[[[]]]]`, 3, 0, false},
		{"zero depth takes scalars", `1`, 0, 1, true},
		{"zero depth refuses containers", `[]`, 0, 0, false},
		{"nothing", `  `, 1, 0, false},
		{"bad literal", `nul`, 1, 0, false},
		{"trailing comma in array", `[1,]`, 1, 0, false},
		{"trailing comma in object", `{"a":1,}`, 1, 0, false},
		{"missing colon", `{"a" 1}`, 1, 0, false},
		{"key not a string", `{1:2}`, 1, 0, false},
		{"missing comma", `[1 2]`, 1, 0, false},
		{"mismatched bracket", `[1}`, 1, 0, false},
		{"unclosed", `{"a":[1`, 2, 0, false},
		{"bad string inside", "[\"\xff\"]", 1, 0, false},
		{"bad number inside", `[01]`, 1, 0, false},
		{"bad key", `{"\x":1}`, 1, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := Walker{MaxDepth: tt.maxDepth}
			end, _, ok := w.Value([]byte(tt.in), 0)
			if ok != tt.ok || (ok && end != tt.end) {
				t.Errorf("Value(%q) = %d, %t; want %d, %t", tt.in, end, ok, tt.end, tt.ok)
			}
		})
	}
}

func TestValueORsTheFlagsOfNamesAndStrings(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want StringFlags
	}{
		{"none", `{"a":["b"]}`, 0},
		{"escaped name", `{"\u0061":1}`, Escaped},
		{"NUL in a name", `{"\u0000":1}`, Escaped | NULEscape},
		{"surrogate in a later name", `{"a":1,"\ud800":2}`, Escaped | SurrogateEscape},
		{"both in values", `["\u0000",["\udfff"]]`, Escaped | NULEscape | SurrogateEscape},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := Walker{MaxDepth: 4}
			_, got, ok := w.Value([]byte(tt.in), 0)
			if !ok || got != tt.want {
				t.Errorf("Value(%q) = flags %b, %t; want %b, true", tt.in, got, ok, tt.want)
			}
		})
	}
}

func TestValueCallsClosedPerContainer(t *testing.T) {
	in := []byte(`{"a":[], "b":{"c":[1]} }`)
	type call struct{ depth, start, end int }
	var got []call
	w := Walker{MaxDepth: 3, Closed: func(depth, start, end int) { got = append(got, call{depth, start, end}) }}
	if _, _, ok := w.Value(in, 0); !ok {
		t.Fatalf("Value(%q) not ok", in)
	}
	want := []call{{2, 5, 7}, {3, 18, 21}, {2, 13, 22}, {1, 0, 24}}
	if len(got) != len(want) {
		t.Fatalf("Closed calls %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("Closed call %d = %v, want %v", i, got[i], want[i])
		}
	}
}

func TestValueCallsNumberForUnusualNumbersOnly(t *testing.T) {
	tests := []struct {
		name   string
		in     string
		refuse bool
		called []string
		ok     bool
	}{
		{"short numbers", `[1, -2.5, 123]`, false, nil, true},
		{"exponent", `[1, 2e3]`, false, []string{"2e3"}, true},
		{"long", `[12345, 1234]`, false, []string{"12345"}, true},
		{"refused", `[1, 2E-3, 4]`, true, []string{"2E-3"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var called []string
			w := Walker{MaxDepth: 1, ShortNumber: 4, Number: func(n []byte) bool {
				called = append(called, string(n))
				return !tt.refuse
			}}
			_, _, ok := w.Value([]byte(tt.in), 0)
			if ok != tt.ok || strings.Join(called, " ") != strings.Join(tt.called, " ") {
				t.Errorf("Value(%q) = %t calling Number with %q; want %t, %q", tt.in, ok, called, tt.ok, tt.called)
			}
		})
	}
}

func TestValueNestsBeyondItsStackArray(t *testing.T) {
	in := []byte(strings.Repeat(`{"a":[`, 100) + strings.Repeat(`]}`, 100))
	w := Walker{MaxDepth: 200}
	if end, _, ok := w.Value(in, 0); !ok || end != len(in) {
		t.Errorf("Value(200 levels) = %d, %t; want %d, true", end, ok, len(in))
	}
	w.MaxDepth = 199
	if _, _, ok := w.Value(in, 0); ok {
		t.Errorf("Value(200 levels) with MaxDepth 199 ok, want not ok")
	}
}

func TestValueDoesNotAllocate(t *testing.T) {
	in := []byte(`{"type":"inbound-rtp","id":"x","jitter":1.5e-3,"codec":{"mime":"video/VP8"},"a":[true,false,null]}`)
	ends := 0
	w := Walker{MaxDepth: 64, Closed: func(int, int, int) { ends++ }, Number: func([]byte) bool { return true }}
	allocs := testing.AllocsPerRun(100, func() {
		if _, _, ok := w.Value(in, 0); !ok {
			t.Fatal("not ok")
		}
	})
	if allocs != 0 {
		t.Errorf("Value allocated %v times per run, want 0", allocs)
	}
}

func TestSkipSpaceSkipsJSONWhiteSpaceOnly(t *testing.T) {
	tests := []struct {
		name string
		in   string
		p    int
		want int
	}{
		{"none", "a", 0, 0},
		{"all four", " \t\r\na", 0, 4},
		{"from p", "a  b", 1, 3},
		{"to the end", "  ", 0, 2},
		{"not a form feed", "\fa", 0, 0},
		{"not a no-break space", "\u00a0", 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := SkipSpace([]byte(tt.in), tt.p); got != tt.want {
				t.Errorf("SkipSpace(%q, %d) = %d, want %d", tt.in, tt.p, got, tt.want)
			}
		})
	}
}
