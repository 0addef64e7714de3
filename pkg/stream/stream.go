package stream

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"kohaku/pkg/retry"
)

// Names fixed by DESIGN.md: operators and dashboards depend on them.
const (
	Name          = "KOHAKU"
	SubjectPrefix = "kohaku.stats."
	Subjects      = SubjectPrefix + ">"
	Consumer      = "kohaku-writer"
)

// Message headers set by the receiver (NewMsg).
const (
	HeaderMsgID        = "Nats-Msg-Id"
	HeaderExporterType = "Kohaku-Exporter-Type"
	HeaderReceivedAt   = "Kohaku-Received-At"
	HeaderReceiver     = "Kohaku-Receiver"
)

// Subject returns the subject that messages of an exporter type are published to.
func Subject(exporterType string) string { return SubjectPrefix + exporterType }

// MsgID returns the JetStream deduplication id of a message: a hash of the exporter type and
// the body, so that a request retried by Sora within the duplicate window is stored once.
func MsgID(exporterType string, body []byte) string {
	h := sha256.New()
	h.Write([]byte(exporterType))
	h.Write([]byte{0}) // separator: type and body must not run into each other
	h.Write(body)
	var sum [sha256.Size]byte
	return hex.EncodeToString(h.Sum(sum[:0])[:16])
}

// Config is the stream's configuration. Receivers and writers create the stream with the
// same Config, so either may start first.
type Config struct {
	MaxAge     time.Duration
	MaxBytes   int64
	Duplicates time.Duration
	Replicas   int
}

// DefaultConfig returns the defaults of DESIGN.md section 3.
func DefaultConfig() Config {
	return Config{MaxAge: 7 * 24 * time.Hour, MaxBytes: 10 << 30, Duplicates: 2 * time.Minute, Replicas: 1}
}

// StreamConfig returns the JetStream configuration: file storage and Limits retention, so
// that any period still in the stream can be replayed, and DiscardNew, so that a full
// stream refuses new messages (publishes fail with an error IsFull recognizes) instead of
// deleting its oldest ones, which may not be written yet (DESIGN.md section 1). Room is
// made by MaxAge and by the writer deleting what it has written (Trim).
func (c Config) StreamConfig() jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:        Name,
		Description: "Kohaku: Sora stats-exporter messages, raw request bodies",
		Subjects:    []string{Subjects},
		Retention:   jetstream.LimitsPolicy,
		Storage:     jetstream.FileStorage,
		Discard:     jetstream.DiscardNew,
		MaxAge:      c.MaxAge,
		MaxBytes:    c.MaxBytes,
		Duplicates:  c.Duplicates,
		Replicas:    c.Replicas,
	}
}

// Ensure creates the stream, or updates it to cfg when it exists with other settings: a
// stream created by an earlier release with DiscardOld becomes DiscardNew.
func Ensure(ctx context.Context, js jetstream.JetStream, cfg Config) (jetstream.Stream, error) {
	s, err := js.CreateOrUpdateStream(ctx, cfg.StreamConfig())
	if err != nil {
		return nil, fmt.Errorf("create or update stream %s: %w", Name, err)
	}
	return s, nil
}

// EnsureRetry calls Ensure until it succeeds or ctx ends, waiting between attempts, so that
// a service can start before NATS does. report is told of each failure (it may be nil).
func EnsureRetry(ctx context.Context, js jetstream.JetStream, cfg Config, report func(error)) (jetstream.Stream, error) {
	b := retry.Backoff{Min: 250 * time.Millisecond, Max: 5 * time.Second}
	for {
		s, err := Ensure(ctx, js, cfg)
		if err == nil {
			return s, nil
		}
		if report != nil {
			report(err)
		}
		if werr := b.Wait(ctx); werr != nil {
			return nil, errors.Join(werr, err)
		}
	}
}
