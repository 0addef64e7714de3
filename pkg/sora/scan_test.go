package sora

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"kohaku/testsupport/fixtures"
)

// TestQuickSkipAgreesWithSkip validates random mutations of the fixtures (a byte replaced
// by one that matters to JSON, a cut, deep nesting) with and without the fast paths
// (jsonscan.Walker, quickElement) and wants the same answer, error text included.
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
		// The fixtures are within the defaults and around the others (27 elements, 51
		// members, ids of up to 97 bytes).
		l := [...]Limits{{}, {MaxElements: 26}, {MaxMembers: 40}, {MaxIDBytes: 16}}[i%4]
		quick, slow := l.validate(fx.ExporterType, b, false), l.validate(fx.ExporterType, b, true)
		if fmt.Sprint(quick) != fmt.Sprint(slow) {
			t.Fatalf("limits %+v, body %q:\nwith the fast paths %v\nwithout            %v", l, b, quick, slow)
		}
	}
}
