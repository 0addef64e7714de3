package embedded

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// Sync is when JetStream makes the messages it stored durable with fsync. With Always it
// syncs each write before the PubAck, so a body answered 204 survives a power loss of the
// machine; with an Interval it syncs in the background that often, and a power loss can take
// what was stored since the last sync (a crash of the process alone loses nothing: the
// operating system still holds the writes). The zero Sync is nats-server's own default, an
// interval of two minutes.
type Sync struct {
	Always   bool
	Interval time.Duration // used when Always is false; 0 means nats-server's default
}

// ErrSync is returned for a sync policy that is neither "always" nor a positive duration.
var ErrSync = errors.New(`embedded nats: sync must be "always", "default" or a positive duration such as 1s`)

// ParseSync reads a sync policy as nats-server's sync_interval takes it: "always", or a Go
// duration such as "10s"; "" and "default" mean nats-server's default interval.
func ParseSync(s string) (Sync, error) {
	switch v := strings.ToLower(strings.TrimSpace(s)); v {
	case "always":
		return Sync{Always: true}, nil
	case "", "default":
		return Sync{}, nil
	default:
		d, err := time.ParseDuration(v)
		if err != nil {
			return Sync{}, fmt.Errorf("%w: %q: %w", ErrSync, s, err)
		}
		if d <= 0 {
			return Sync{}, fmt.Errorf("%w: %q", ErrSync, s)
		}
		return Sync{Interval: d}, nil
	}
}

// String returns the policy as ParseSync reads it: "always", the interval, or "default".
func (s Sync) String() string {
	switch {
	case s.Always:
		return "always"
	case s.Interval > 0:
		return s.Interval.String()
	}
	return "default"
}

// UnmarshalText reads the policy with ParseSync, so that configuration (envconfig) and
// flags (flag.TextVar) take it as text.
func (s *Sync) UnmarshalText(b []byte) error {
	v, err := ParseSync(string(b))
	if err != nil {
		return err
	}
	*s = v
	return nil
}

// MarshalText returns String.
func (s Sync) MarshalText() ([]byte, error) { return []byte(s.String()), nil }
