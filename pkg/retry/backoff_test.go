package retry

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestBackoffDoublesUpToMax(t *testing.T) {
	ms := time.Millisecond
	for _, tc := range []struct {
		name     string
		min, max time.Duration
		want     []time.Duration // the delay of each Wait
	}{
		{name: "doubles then stays at max", min: ms, max: 5 * ms, want: []time.Duration{ms, 2 * ms, 4 * ms, 5 * ms, 5 * ms}},
		{name: "max below twice min", min: 2 * ms, max: 3 * ms, want: []time.Duration{2 * ms, 3 * ms, 3 * ms}},
		{name: "min equals max", min: ms, max: ms, want: []time.Duration{ms, ms, ms}},
		{name: "zero min does not wait", min: 0, max: ms, want: []time.Duration{0, 0}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := Backoff{Min: tc.min, Max: tc.max}
			for i, want := range tc.want {
				got := b.next
				if got == 0 {
					got = b.Min // the first Wait starts at Min
				}
				if got != want {
					t.Fatalf("wait %d: delay %s, want %s", i+1, got, want)
				}
				start := time.Now()
				if err := b.Wait(context.Background()); err != nil {
					t.Fatalf("wait %d: %v", i+1, err)
				}
				if took := time.Since(start); took < want {
					t.Errorf("wait %d returned after %s, want at least %s", i+1, took, want)
				}
			}
		})
	}
}

func TestBackoffWaitEndsWithContext(t *testing.T) {
	b := Backoff{Min: time.Hour, Max: time.Hour}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := b.Wait(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Wait with an ended context: got %v, want %v", err, context.Canceled)
	}
}
