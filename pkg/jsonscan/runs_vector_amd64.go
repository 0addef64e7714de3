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
