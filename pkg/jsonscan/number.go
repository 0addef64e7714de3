package jsonscan

import (
	"encoding/binary"
	"math/bits"
)

// Number checks the number that starts at d[p], a minus or a digit, against JSON's
// grammar (no leading zeros, no lone point, digits after a point and an exponent mark).
// It returns the index after the number and whether it has an exponent, which is all a
// caller needs to tell the numbers whose size it must read; ok is false, with end at the
// offending byte, when the grammar is not met.
func Number(d []byte, p int) (end int, exponent, ok bool) {
	if d[p] == '-' {
		p++
	}
	switch {
	case p < len(d) && d[p] == '0':
		p++
	case p < len(d) && d[p] >= '1' && d[p] <= '9':
		p = digits(d, p+1)
	default:
		return p, false, false
	}
	if p < len(d) && d[p] == '.' {
		q := digits(d, p+1)
		if q == p+1 {
			return q, false, false
		}
		p = q
	}
	if p < len(d) && (d[p] == 'e' || d[p] == 'E') {
		p++
		if p < len(d) && (d[p] == '+' || d[p] == '-') {
			p++
		}
		q := digits(d, p)
		if q == p {
			return p, true, false
		}
		return q, true, true
	}
	return p, false, true
}

// digitWords returns the index of the first byte at or after d[p] that is not a digit.
func digitWords(d []byte, p int) int {
	// Stats numbers run to a dozen digits and more (timestamps, byte counts, floats with
	// all their digits): eight bytes at a time while the data lasts.
	for p+8 <= len(d) {
		if m := notDigit(binary.LittleEndian.Uint64(d[p:])); m != 0 {
			return p + bits.TrailingZeros64(m)>>3
		}
		p += 8
	}
	for p < len(d) && d[p] >= '0' && d[p] <= '9' {
		p++
	}
	return p
}

// notDigit returns a mask with the high bit of each byte of x, eight bytes read
// little-endian, that is not an ASCII digit: XORed with '0', a digit is below 10; adding
// 128-10 to a byte below 128 sets its high bit exactly when it is 10 or more, without a
// carry into the next byte; a byte with its high bit set is not ASCII.
func notDigit(x uint64) uint64 {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	y := x ^ (ones * '0')
	return ((y & ^uint64(highs)) + ones*(128-10) | y) & highs
}
