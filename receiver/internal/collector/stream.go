package collector

import (
	"context"
	"log/slog"

	"github.com/nats-io/nats.go/jetstream"

	"kohaku/pkg/stream"
)

// ManageStream creates or updates the stream to cfg, retrying until it succeeds, and again
// after every signal on reconnected (a NATS server restarted without its data loses the
// stream). Its first attempt needs no signal: send on reconnected for reconnections only,
// or the first connection makes it check the stream twice. It returns when ctx ends.
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
