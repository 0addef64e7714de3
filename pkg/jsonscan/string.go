package jsonscan

import (
	"encoding/binary"
	"math/bits"
	"unicode/utf8"
)

// StringFlags tell what the escapes of a well-formed string hold, for the callers that
// store it: PostgreSQL's text and jsonb take neither U+0000 nor an unpaired surrogate.
type StringFlags uint8

const (
	// Escaped marks a string with at least one escape, so that its raw contents are not
	// its text (see Unescape).
	Escaped StringFlags = 1 << iota
	// NULEscape marks the escape \u0000.
	NULEscape
	// SurrogateEscape marks an escaped UTF-16 surrogate, \uD800 to \uDFFF, paired or not.
	SurrogateEscape
)

// Fault says why a string is not well formed; the zero Fault means it is.
type Fault uint8

const (
	NoFault      Fault = iota // well formed
	Unterminated              // the data ends inside the string
	ControlChar               // a byte below 0x20, which must be escaped
	BadUTF8                   // a byte sequence that is not UTF-8
	ShortEscape               // the data ends inside a \u escape
	BadHexEscape              // a \u escape with a byte that is not a hex digit
	BadEscape                 // a backslash before a byte that JSON does not escape
)

// String checks the string that starts at d[p], which must be a quote: escapes, control
// characters and UTF-8. It returns the index after the closing quote and what the escapes
// hold, or, with a Fault, the index of the offending byte (len(d) when the data ends).
func String(d []byte, p int) (end int, f StringFlags, fault Fault) {
	p++
	for {
		if p = plainRun(d, p); p >= len(d) {
			return p, f, Unterminated
		}
		switch c := d[p]; {
		case c == '"':
			return p + 1, f, NoFault
		case c == '\\':
			if p+1 >= len(d) {
				return p, f, Unterminated
			}
			f |= Escaped
			switch d[p+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				p += 2
			case 'u':
				if p+6 > len(d) {
					return p, f, ShortEscape
				}
				r := hex4(d[p+2:])
				switch {
				case r < 0:
					return p, f, BadHexEscape
				case r == 0:
					f |= NULEscape
				case r >= 0xD800 && r < 0xE000:
					f |= SurrogateEscape
				}
				p += 6
			default:
				return p, f, BadEscape
			}
		case c < 0x20:
			return p, f, ControlChar
		default: // not ASCII
			r, size := utf8.DecodeRune(d[p:])
			if r == utf8.RuneError && size == 1 {
				return p, f, BadUTF8
			}
			p += size
		}
	}
}

// plainByte marks the bytes that stand for themselves inside a JSON string: not a quote,
// a backslash, a control character or part of a multi-byte UTF-8 sequence.
var plainByte = func() (t [256]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// plainWords returns the index of the first byte at or after d[p] that is not plain (see
// plainByte), len(d) when there is none: eight bytes at a time while the data lasts.
func plainWords(d []byte, p int) int {
	for p+8 <= len(d) {
		if m := notPlain(binary.LittleEndian.Uint64(d[p:])); m != 0 {
			return p + bits.TrailingZeros64(m)>>3
		}
		p += 8
	}
	for p < len(d) && plainByte[d[p]] {
		p++
	}
	return p
}

// notPlain returns a mask of the high bits of x, eight bytes read little-endian (the first
// byte lowest): the bit of its first byte that is not plain (see plainByte) is set, none
// below it, maybe some above; 0 when all eight are plain. It uses the exact tests of "Bit Twiddling Hacks"
// (https://graphics.stanford.edu/~seander/bithacks.html, "Determine if a word has a byte
// less than n"): (v - ones*n) &^ v sets the high bit of a byte below n, and of none below
// the lowest such byte; a quote or a backslash is a zero byte after an XOR; a byte with
// its high bit set is not ASCII.
func notPlain(x uint64) uint64 {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	q, b := x^(ones*'"'), x^(ones*'\\')
	return (((x - ones*0x20) &^ x) | ((q - ones) &^ q) | ((b - ones) &^ b) | x) & highs
}

// hexVals holds the value of each hex digit and -1 for the other bytes.
var hexVals = func() (t [256]int8) {
	for c := range t {
		t[c] = -1
	}
	for c := '0'; c <= '9'; c++ {
		t[c] = int8(c - '0')
	}
	for c := 'a'; c <= 'f'; c++ {
		t[c] = int8(c-'a') + 10
		t[c-'a'+'A'] = int8(c-'a') + 10
	}
	return t
}()

// hex4 returns the value of the four hex digits that b starts with, or a negative number
// when one is not a hex digit: a -1 stays negative through the shifts and ORs.
func hex4(b []byte) rune {
	_ = b[3] // one bounds check for the four
	return rune(hexVals[b[0]])<<12 | rune(hexVals[b[1]])<<8 | rune(hexVals[b[2]])<<4 | rune(hexVals[b[3]])
}
