package jsonscan

import (
	"bytes"
	"encoding/binary"
	"math/bits"
	"testing"
)

func TestStringEndsAfterTheQuoteAndReportsEscapes(t *testing.T) {
	tests := []struct {
		name  string
		in    string
		end   int
		flags StringFlags
	}{
		{"empty", `""`, 2, 0},
		{"plain longer than a word", `"abcdefghijklmnop"`, 18, 0},
		{"stops at its own quote", `"ab"cd"`, 4, 0},
		{"non-ASCII", `"é😀"`, 8, 0},
		{"short escapes", `"\"\\\/\b\f\n\r\t"`, 18, Escaped},
		{"unicode escape", `"\u00e9"`, 8, Escaped},
		{"upper-case hex", `"\u00E9\uABCD"`, 14, Escaped},
		{"NUL escape", `"a\u0000"`, 9, Escaped | NULEscape},
		{"surrogate pair", `"\ud83d\ude00"`, 14, Escaped | SurrogateEscape},
		{"lone low surrogate", `"\uDC00"`, 8, Escaped | SurrogateEscape},
		{"last before surrogates", `"\ud7ff"`, 8, Escaped},
		{"first after surrogates", `"\ue000"`, 8, Escaped},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			end, f, fault := String([]byte(tt.in), 0)
			if end != tt.end || f != tt.flags || fault != NoFault {
				t.Errorf("String(%q) = %d, %b, fault %d; want %d, %b, no fault", tt.in, end, f, fault, tt.end, tt.flags)
			}
		})
	}
}

func TestStringFaultsAtTheOffendingByte(t *testing.T) {
	tests := []struct {
		name  string
		in    string
		at    int
		fault Fault
	}{
		{"no closing quote", `"abc`, 4, Unterminated},
		{"no closing quote after a word", `"abcdefghij`, 11, Unterminated},
		{"backslash at the end", `"ab\`, 3, Unterminated},
		{"control character", "\"a\tb\"", 2, ControlChar},
		{"NUL byte", "\"\x00\"", 1, ControlChar},
		{"invalid UTF-8", "\"ab\xff\"", 3, BadUTF8},
		{"truncated UTF-8", "\"\xc3\"", 1, BadUTF8},
		{"encoded surrogate", "\"\xed\xa0\x80\"", 1, BadUTF8},
		{"short unicode escape", `"\u12`, 1, ShortEscape},
		{"bad hex digit", `"\u12g4"`, 1, BadHexEscape},
		{"unknown escape", `"\x"`, 1, BadEscape},
		{"escaped single quote", `"\'"`, 1, BadEscape},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			at, _, fault := String([]byte(tt.in), 0)
			if at != tt.at || fault != tt.fault {
				t.Errorf("String(%q) = %d, fault %d; want %d, fault %d", tt.in, at, fault, tt.at, tt.fault)
			}
		})
	}
}

// TestNotPlainAgreesWithPlainByte checks the eight-byte test against the byte table, for
// every byte value at every position of a plain word, and with a second odd byte after:
// the lowest high bit notPlain leaves must be that of the first byte that is not plain.
func TestNotPlainAgreesWithPlainByte(t *testing.T) {
	base := []byte("abcdefgh")
	for pos := range 8 {
		for c := range 256 {
			for _, later := range []byte{'a', '"', 0x80, 0x00} {
				w := bytes.Clone(base)
				w[pos] = byte(c)
				if pos < 7 {
					w[7] = later
				}
				want := 0
				for want < 8 && plainByte[w[want]] {
					want++
				}
				if got := bits.TrailingZeros64(notPlain(binary.LittleEndian.Uint64(w))) >> 3; got != want {
					t.Fatalf("plain prefix of %q = %d, want %d", w, got, want)
				}
			}
		}
	}
}

func TestHex4IsNegativeForAnyBadDigit(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want rune
	}{
		{"zero", "0000", 0},
		{"mixed case", "aBcD", 0xabcd},
		{"max", "ffff", 0xffff},
		{"first bad", "g000", -1},
		{"last bad", "000G", -1},
		{"space", "12 4", -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := hex4([]byte(tt.in))
			if (tt.want < 0 && got >= 0) || (tt.want >= 0 && got != tt.want) {
				t.Errorf("hex4(%q) = %#x, want %#x", tt.in, got, tt.want)
			}
		})
	}
}
