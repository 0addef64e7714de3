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
