// Package retry paces the retry loops of Kohaku's services, which wait and try again while
// a dependency (NATS, JetStream, PostgreSQL) is unavailable.
package retry

import (
	"context"
	"time"
)

// Backoff is capped exponential backoff: its first Wait waits Min, each following one twice
// as long as the one before, at most Max. Each retry loop declares its own,
// retry.Backoff{Min: m, Max: M}.
type Backoff struct {
	Min, Max time.Duration
	next     time.Duration // of the coming Wait; 0 before the first
}

// Wait waits for the next delay and returns nil, or returns ctx.Err() as soon as ctx ends.
func (b *Backoff) Wait(ctx context.Context) error {
	if b.next == 0 {
		b.next = b.Min
	}
	t := time.NewTimer(b.next)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
	}
	b.next = min(2*b.next, b.Max)
	return nil
}
