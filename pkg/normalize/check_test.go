package normalize

import (
	"math/rand/v2"
	"testing"
)

// TestQuickCheckAgreesWithEncodingJSON mutates the fixtures at random (a byte replaced by
// one that matters to JSON, a cut) and checks that checkBody's fast path accepts exactly
// what its definition accepts; FuzzQuickCheck searches further.
func TestQuickCheckAgreesWithEncodingJSON(t *testing.T) {
	special := []byte("{}[]\",:\\u0123456789-+.eEtrufalsn \t\n\x00\x1f\x80\xc3\xa9\xed\xff")
	rng := rand.New(rand.NewPCG(1, 2))
	bodies := testBodies(t)
	for i := range 20000 {
		b := []byte(string(bodies[i%len(bodies)].Body))
		for range 1 + rng.IntN(3) {
			b[rng.IntN(len(b))] = special[rng.IntN(len(special))]
		}
		if rng.IntN(4) == 0 {
			b = b[:rng.IntN(len(b))]
		}
		checkQuick(t, b)
	}
}
