package sora

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"kohaku/pkg/fixtures"
)

// TestPlainPrefixAgreesWithPlainByte checks the eight-byte count against the byte table,
// for every byte value at every position of a plain word, and with a second odd byte after.
func TestPlainPrefixAgreesWithPlainByte(t *testing.T) {
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
				if got := plainPrefix(binary.LittleEndian.Uint64(w)); got != want {
					t.Fatalf("plainPrefix(%q) = %d, want %d", w, got, want)
				}
			}
		}
	}
}

// TestQuickSkipAgreesWithSkip validates random mutations of the fixtures (a byte replaced
// by one that matters to JSON, a cut, deep nesting) with and without quickSkip and wants
// the same answer, error text included.
func TestQuickSkipAgreesWithSkip(t *testing.T) {
	all, err := fixtures.All()
	if err != nil {
		t.Fatal(err)
	}
	special := []byte("{}[]\",:\\u0123456789-+.eEtrufalsn \t\n\x00\x1f\x80\xc3\xa9\xed\xff")
	rng := rand.New(rand.NewPCG(3, 4))
	deep := []byte(`{"type":"connection.user-agent","stats":[{"a":` + strings.Repeat("[", 70) + strings.Repeat("]", 70) + `}]}`)
	for i := range 30000 {
		fx := all[i%len(all)]
		b := bytes.Clone(fx.Body)
		if i%100 == 0 {
			b = bytes.Clone(deep)
		}
		for range 1 + rng.IntN(3) {
			b[rng.IntN(len(b))] = special[rng.IntN(len(special))]
		}
		if rng.IntN(4) == 0 {
			b = b[:rng.IntN(len(b))]
		}
		quick, slow := validate(fx.ExporterType, b, false), validate(fx.ExporterType, b, true)
		if fmt.Sprint(quick) != fmt.Sprint(slow) {
			t.Fatalf("body %q:\nwith quickSkip %v\nwithout       %v", b, quick, slow)
		}
	}
}
