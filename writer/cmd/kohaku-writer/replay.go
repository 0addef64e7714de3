package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"kohaku/schema"
	"kohaku/writer/internal/ingest"
	"kohaku/writer/internal/store"
)

// replayRange is the period that replay writes again.
type replayRange struct {
	since, until time.Time // until zero: up to the stream's last message
}

func parseRange(since, until string) (replayRange, error) {
	var r replayRange
	if since == "" {
		return r, errors.New("--since is required (RFC 3339, e.g. 2025-01-31T09:00:00Z)")
	}
	var err error
	if r.since, err = time.Parse(time.RFC3339, since); err != nil {
		return r, fmt.Errorf("--since: want RFC 3339: %w", err)
	}
	if until != "" {
		if r.until, err = time.Parse(time.RFC3339, until); err != nil {
			return r, fmt.Errorf("--until: want RFC 3339: %w", err)
		}
		if r.until.Before(r.since) {
			return r, fmt.Errorf("--until %s is before --since %s", until, since)
		}
	}
	return r, nil
}

// runReplay is the replay subcommand. With KOHAKU_EMBEDDED_NATS it reads from the embedded
// server of the writer that is running, at KOHAKU_EMBEDDED_NATS_LISTEN.
func runReplay(ctx context.Context, cfg Config, r replayRange, log *slog.Logger, progress io.Writer) error {
	natsURL := cfg.NATSURL
	if cfg.EmbeddedNATS {
		natsURL = "nats://" + cfg.EmbeddedNATSListen
	}
	nc, err := connectNATS(natsURL, false, log)
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return fmt.Errorf("jetstream: %w", err)
	}
	pool, err := openPool(ctx, cfg.DatabaseURL)
	if err != nil {
		return err
	}
	defer pool.Close()
	if cfg.Migrate {
		// A database restored from an older backup may lack newer migrations.
		if err := prepareDatabase(ctx, cfg, pool, false, log); err != nil {
			return err
		}
	}
	st := store.New(pool, prometheus.NewRegistry(), log)
	stats, err := ingest.Replay(ctx, js, st, ingest.ReplayOptions{
		Since:        r.since,
		Until:        r.until,
		BatchSize:    cfg.BatchSize,
		BatchWait:    cfg.BatchWait,
		WriteTimeout: cfg.WriteTimeout,
		Progress:     progress,
		Logger:       log,
	})
	if err != nil || stats.RowsFrom.IsZero() {
		return err
	}
	// Continuous aggregates skip rows written behind their refresh window; bring the
	// replayed period in now rather than leave it to the policy.
	if err := schema.RefreshAggregatesPool(ctx, pool, stats.RowsFrom, stats.RowsTo); err != nil {
		return fmt.Errorf("replay done, but refreshing the aggregates failed: %w", err)
	}
	log.Info("aggregates refreshed over the replayed rows", "from", stats.RowsFrom, "to", stats.RowsTo)
	return nil
}
