//go:build goexperiment.simd

package jsonscan

import (
	"math/bits"
	"simd/archsimd"
)

// With GOEXPERIMENT=simd (Go 1.26's simd/archsimd), the runs that most of a body is made
// of, the plain bytes of strings and the digits of numbers, are found 16 bytes at a time
// on a CPU with AVX2, and eight at a time on others (runs_words.go). Sixteen, not 32:
// most strings and numbers of a stats report are shorter than 16 bytes, and on a large
// multistream report the wider load was slower. The results are the same in every build;
// TestRunsMatchWords holds the two to that.

// plainRun returns the index of the first byte at or after d[p] that is not plain (see
// plainByte), len(d) when there is none.
func plainRun(d []byte, p int) int {
	if !archsimd.X86.AVX2() {
		return plainWords(d, p)
	}
	// Read as signed bytes, a control character and a byte that is not ASCII are both
	// below ' ': one comparison finds either.
	space, quote, backslash := archsimd.BroadcastInt8x16(' '), archsimd.BroadcastInt8x16('"'), archsimd.BroadcastInt8x16('\\')
	for p+16 <= len(d) {
		v := archsimd.LoadUint8x16Slice(d[p : p+16]).AsInt8x16()
		if m := v.Less(space).Or(v.Equal(quote)).Or(v.Equal(backslash)).ToBits(); m != 0 {
			return p + bits.TrailingZeros16(m)
		}
		p += 16
	}
	return plainWords(d, p) // the last 15 bytes or fewer
}

// digits returns the index of the first byte at or after d[p] that is not a digit.
func digits(d []byte, p int) int {
	if !archsimd.X86.AVX2() {
		return digitWords(d, p)
	}
	// Signed, a byte that is not ASCII is below '0'.
	zero, nine := archsimd.BroadcastInt8x16('0'), archsimd.BroadcastInt8x16('9')
	for p+16 <= len(d) {
		v := archsimd.LoadUint8x16Slice(d[p : p+16]).AsInt8x16()
		if m := v.Less(zero).Or(v.Greater(nine)).ToBits(); m != 0 {
			return p + bits.TrailingZeros16(m)
		}
		p += 16
	}
	return digitWords(d, p)
}

// Member reads at once a member that starts at d[p], a quote, in the form compact JSON
// gives most members: a key of plain bytes (see plainByte), its closing quote, a colon,
// then a string of plain bytes or a number without an exponent, all within memberWindow
// bytes. It returns the index after the key's closing quote and the index after the
// value, where String and Number would have ended (TestMemberMatchesTokens), and true;
// false when the member is in another form, which the caller then reads token by token.
// It does not look past the value: the caller checks what follows.
func Member(d []byte, p int) (keyEnd, end int, ok bool) {
	if p < 0 || p+memberWindow > len(d) || !archsimd.X86.AVX2() {
		return 0, 0, false
	}
	// Three vectors cover the window; bit i of a mask stands for d[p+i].
	v0 := archsimd.LoadUint8x16Slice(d[p : p+16]).AsInt8x16()
	v1 := archsimd.LoadUint8x16Slice(d[p+16 : p+32]).AsInt8x16()
	v2 := archsimd.LoadUint8x16Slice(d[p+32 : p+48]).AsInt8x16()
	quote := archsimd.BroadcastInt8x16('"')
	q := uint64(v0.Equal(quote).ToBits()) | uint64(v1.Equal(quote).ToBits())<<16 | uint64(v2.Equal(quote).ToBits())<<32
	// Signed, a byte that is not ASCII is below ' ' too.
	space, backslash := archsimd.BroadcastInt8x16(' '), archsimd.BroadcastInt8x16('\\')
	s := uint64(v0.Less(space).Or(v0.Equal(backslash)).ToBits()) | uint64(v1.Less(space).Or(v1.Equal(backslash)).ToBits())<<16 |
		uint64(v2.Less(space).Or(v2.Equal(backslash)).ToBits())<<32
	if q&1 == 0 {
		return 0, 0, false
	}
	// The key: plain bytes up to the next quote, then the colon.
	rest := q >> 1
	if rest == 0 {
		return 0, 0, false
	}
	k := 1 + bits.TrailingZeros64(rest) // the key's closing quote
	if s&(1<<k-1) != 0 || k+2 >= memberWindow || d[p+k+1] != ':' {
		return 0, 0, false
	}
	i := k + 2 // where the value starts
	switch c := d[p+i]; {
	case c == '"':
		rest := q >> (i + 1)
		if rest == 0 {
			return 0, 0, false
		}
		e := i + 1 + bits.TrailingZeros64(rest) // the closing quote
		if s&(1<<e-1)>>(i+1) != 0 {
			return 0, 0, false
		}
		return p + k + 1, p + e + 1, true
	case c == '-' || c >= '0' && c <= '9':
		belowZero, aboveNine := archsimd.BroadcastInt8x16('0'-1), archsimd.BroadcastInt8x16('9'+1)
		g := uint64(v0.Greater(belowZero).And(v0.Less(aboveNine)).ToBits()) |
			uint64(v1.Greater(belowZero).And(v1.Less(aboveNine)).ToBits())<<16 |
			uint64(v2.Greater(belowZero).And(v2.Less(aboveNine)).ToBits())<<32
		if c == '-' {
			i++
		}
		// Each run must end inside the window, where the byte after it was seen.
		switch {
		case i >= memberWindow || g>>i&1 == 0:
			return 0, 0, false
		case d[p+i] == '0': // no digit may follow; the caller sees one that does
			i++
		default:
			i += bits.TrailingZeros64(^g >> i)
		}
		if i >= memberWindow {
			return 0, 0, false
		}
		if d[p+i] == '.' {
			i++
			if i >= memberWindow || g>>i&1 == 0 {
				return 0, 0, false
			}
			if i += bits.TrailingZeros64(^g >> i); i >= memberWindow {
				return 0, 0, false
			}
		}
		if d[p+i] == 'e' || d[p+i] == 'E' {
			return 0, 0, false
		}
		return p + k + 1, p + i, true
	}
	return 0, 0, false
}

// memberAtOnce reports whether Member reads members in this build and on this CPU.
func memberAtOnce() bool { return archsimd.X86.AVX2() }
