package jsonscan

import "testing"

func TestNumberFollowsTheGrammar(t *testing.T) {
	tests := []struct {
		name     string
		in       string
		end      int
		exponent bool
		ok       bool
	}{
		{"zero", "0", 1, false, true},
		{"negative zero", "-0", 2, false, true},
		{"integer", "1234,", 4, false, true},
		{"fraction", "-12.50]", 6, false, true},
		{"exponent", "1e9", 3, true, true},
		{"signed exponent", "2.5E-07}", 7, true, true},
		{"plus exponent", "1e+2", 4, true, true},
		{"leading zero ends the number", "01", 1, false, true},
		{"long integer", "12345678901234567,", 17, false, true},
		{"long fraction", "0.1234567890123456789]", 21, false, true},
		{"digits to the end of the data", "1234567890123", 13, false, true},
		{"letter among digits", "123456789a", 9, false, true},
		{"long exponent", "1e1234567890123}", 15, true, true},
		{"lone minus", "-", 1, false, false},
		{"minus then letter", "-a", 1, false, false},
		{"point without digits", "1.", 2, false, false},
		{"point then exponent", "1.e5", 2, false, false},
		{"exponent without digits", "1e", 2, true, false},
		{"exponent sign without digits", "1e-", 3, true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			end, exp, ok := Number([]byte(tt.in), 0)
			if end != tt.end || exp != tt.exponent || ok != tt.ok {
				t.Errorf("Number(%q) = %d, %t, %t; want %d, %t, %t", tt.in, end, exp, ok, tt.end, tt.exponent, tt.ok)
			}
		})
	}
}

// TestNotDigitMarksEveryOtherByte checks notDigit against the plain test for every byte
// value in every position of the word.
func TestNotDigitMarksEveryOtherByte(t *testing.T) {
	for pos := range 8 {
		for c := range 256 {
			var w [8]byte
			for k := range w {
				w[k] = '5'
			}
			w[pos] = byte(c)
			x := uint64(0)
			for k := 7; k >= 0; k-- {
				x = x<<8 | uint64(w[k])
			}
			want := uint64(0)
			if c < '0' || c > '9' {
				want = 0x80 << (8 * pos)
			}
			if got := notDigit(x); got != want {
				t.Errorf("byte %#x at %d: notDigit = %#x, want %#x", c, pos, got, want)
			}
		}
	}
}
