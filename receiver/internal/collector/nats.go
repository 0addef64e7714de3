package collector

import (
	"context"
	"log/slog"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"kohaku/pkg/stream"
)

// Connect returns a NATS connection for publishing (stream.Connect). It returns at once even
// when NATS is down and reconnects forever, so that a receiver can start before NATS and
// serves again by itself when NATS is back. After every (re)connection it sends on
// reconnected without blocking, so that ManageStream can make sure the stream still exists.
func Connect(url, name string, log *slog.Logger, reconnected chan<- struct{}) (*nats.Conn, error) {
	return stream.Connect(url, name, log, stream.RetryOnFailedConnect(), stream.OnConnect(func() {
		select {
		case reconnected <- struct{}{}:
		default: // one pending kick is enough
		}
	}))
}

// ManageStream creates or updates the stream to cfg, retrying until it succeeds, and again
// after every signal on reconnected (a NATS server restarted without its data loses the
// stream). It returns when ctx ends.
func ManageStream(ctx context.Context, js jetstream.JetStream, cfg stream.Config, reconnected <-chan struct{}, log *slog.Logger) {
	for {
		_, err := stream.EnsureRetry(ctx, js, cfg, func(err error) {
			log.Warn("stream not ready, retrying", "stream", stream.Name, "err", err)
		})
		if err == nil {
			log.Info("stream ready", "stream", stream.Name, "max_age", cfg.MaxAge, "max_bytes", cfg.MaxBytes,
				"duplicates", cfg.Duplicates, "replicas", cfg.Replicas)
		}
		select {
		case <-ctx.Done():
			return
		case <-reconnected:
		}
	}
}
