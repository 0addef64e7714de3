package collector

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"kohaku/pkg/stream"
)

// Connect returns a NATS connection for publishing. It returns at once even when NATS is
// down and reconnects forever, so that a receiver can start before NATS and serves again by
// itself when NATS is back. After every (re)connection it sends on reconnected without
// blocking, so that ManageStream can make sure the stream still exists.
func Connect(url, name string, log *slog.Logger, reconnected chan<- struct{}) (*nats.Conn, error) {
	kick := func() {
		select {
		case reconnected <- struct{}{}:
		default: // one pending kick is enough
		}
	}
	nc, err := nats.Connect(url,
		nats.Name(name),
		nats.MaxReconnects(-1),
		nats.RetryOnFailedConnect(true),
		nats.ReconnectWait(500*time.Millisecond),
		nats.ReconnectJitter(250*time.Millisecond, time.Second),
		// Notice a silently dead server within about 20 s, not the default 4 minutes.
		nats.PingInterval(10*time.Second),
		nats.MaxPingsOutstanding(2),
		nats.ConnectHandler(func(nc *nats.Conn) {
			log.Info("nats connected", "url", nc.ConnectedUrlRedacted())
			kick()
		}),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			log.Warn("nats disconnected; answering 503 until it is back", "err", err)
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			log.Info("nats reconnected", "url", nc.ConnectedUrlRedacted())
			kick()
		}),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			log.Warn("nats error", "err", err)
		}),
	)
	if err != nil {
		return nil, fmt.Errorf("connect to nats %s: %w", url, err)
	}
	return nc, nil
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
