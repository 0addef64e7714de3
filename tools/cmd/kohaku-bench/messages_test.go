package main

import (
	"bytes"
	"testing"
	"time"

	"kohaku/pkg/normalize"
	"kohaku/pkg/sora"
)

func TestSimulateGivesDistinctValidBodies(t *testing.T) {
	bodies, err := simulate(25, 10, 1, time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC))
	if err != nil {
		t.Fatal(err)
	}
	if len(bodies) != 25 {
		t.Fatalf("got %d bodies, want 25", len(bodies))
	}
	seen := map[string]bool{}
	for i, b := range bodies {
		if seen[string(b)] {
			t.Errorf("body %d repeats an earlier one", i)
		}
		seen[string(b)] = true
		if err := sora.Validate(sora.TypeUserAgent, b); err != nil {
			t.Errorf("body %d: %v", i, err)
		}
	}
}

func TestStampedRewritesOnlyTheEnvelopeTimestamp(t *testing.T) {
	bodies, err := simulate(1, 1, 1, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	at, err := stampAt(bodies[0])
	if err != nil {
		t.Fatal(err)
	}
	when := time.Date(2030, 6, 7, 8, 9, 10, 123456789, time.UTC)
	got := stamped(bodies[0], at, when)
	if len(got) != len(bodies[0]) {
		t.Fatalf("length changed from %d to %d", len(bodies[0]), len(got))
	}
	if want := `"timestamp":"2030-06-07T08:09:10.123456Z",`; !bytes.Contains(got, []byte(want)) {
		t.Errorf("no %s in %.200s", want, got)
	}
	rows, err := normalize.Message(sora.TypeUserAgent, got)
	if err != nil {
		t.Fatal(err)
	}
	if c := rows.Connection; !c.Time.Equal(when.Truncate(time.Microsecond)) {
		t.Errorf("row time %s, want %s", c.Time, when.Truncate(time.Microsecond))
	}
	if bytes.Equal(bodies[0], got) {
		t.Error("the original body was changed too")
	}
}

func TestStampAtRefuses(t *testing.T) {
	for _, b := range []string{`{"timestamp":1}`, `{"timestamp":"2025-01-01T00:00:00Z"}`} {
		if _, err := stampAt([]byte(b)); err == nil {
			t.Errorf("stampAt(%s) accepted", b)
		}
	}
}
