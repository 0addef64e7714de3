package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"kohaku/pkg/logging"
	"kohaku/pkg/stream"
	"kohaku/schema"
	"kohaku/writer/internal/ingest"
)

// replayRange is the period that replay writes again.
type replayRange struct {
	since, until time.Time // until zero: up to the stream's last message
}

// parseRange reads replay's --since and --until: each an RFC 3339 time or a duration
// before now ("2h": two hours ago), --until optional.
func parseRange(since, until string, now time.Time) (replayRange, error) {
	var r replayRange
	if since == "" {
		return r, errors.New("--since is required (RFC 3339, e.g. 2025-01-31T09:00:00Z, or a duration ago, e.g. 2h)")
	}
	var err error
	if r.since, err = parseTime(since, now); err != nil {
		return r, fmt.Errorf("--since: %w", err)
	}
	if until != "" {
		if r.until, err = parseTime(until, now); err != nil {
			return r, fmt.Errorf("--until: %w", err)
		}
		if r.until.Before(r.since) {
			return r, fmt.Errorf("--until %s is before --since %s", until, since)
		}
	}
	return r, nil
}

// parseTime reads an RFC 3339 time, or a positive Go duration meaning that long before now.
func parseTime(s string, now time.Time) (time.Time, error) {
	if d, err := time.ParseDuration(s); err == nil {
		if d <= 0 {
			return time.Time{}, fmt.Errorf("duration %s: want a positive duration ago, such as 2h", s)
		}
		return now.Add(-d), nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("want an RFC 3339 time (2025-01-31T09:00:00Z) or a duration ago (2h, 90m): %w", err)
	}
	return t, nil
}

// runReplay is the replay subcommand. With KOHAKU_EMBEDDED_NATS it reads from the embedded
// server of the writer that is running, at KOHAKU_EMBEDDED_NATS_LISTEN. Progress lines go
// to stderr when it is a terminal; the summary line always does.
func runReplay(ctx context.Context, cfg Config, r replayRange, log *slog.Logger, stderr io.Writer) error {
	stats, err := replay(ctx, cfg, r, log, stderr)
	fmt.Fprintln(stderr, stats.Summary())
	return err
}

func replay(ctx context.Context, cfg Config, r replayRange, log *slog.Logger, stderr io.Writer) (ingest.ReplayStats, error) {
	start := time.Now()
	fail := func(err error) (ingest.ReplayStats, error) {
		return ingest.ReplayStats{Elapsed: time.Since(start), Unfinished: true}, err
	}
	natsURL := cfg.NATSURL
	if cfg.EmbeddedNATS {
		natsURL = "nats://" + cfg.EmbeddedNATSListen
	}
	nc, err := stream.Connect(natsURL, "kohaku-writer", log)
	if err != nil {
		return fail(err)
	}
	defer stream.Close(nc) // its last log line comes before the summary
	js, err := jetstream.New(nc)
	if err != nil {
		return fail(fmt.Errorf("jetstream: %w", err))
	}
	st, pool, err := openStore(ctx, cfg, log)
	if err != nil {
		return fail(err)
	}
	defer pool.Close()
	o := ingest.ReplayOptions{Options: cfg.Options, Since: r.since, Until: r.until}
	if logging.IsTerminal(stderr) {
		o.Progress = stderr
	}
	stats, err := ingest.Replay(ctx, js, st, o, log)
	if err != nil || stats.RowsFrom.IsZero() {
		return stats, err
	}
	// Continuous aggregates skip rows written behind their refresh window; bring the
	// replayed period in now rather than leave it to the policy.
	if err := schema.RefreshAggregatesPool(ctx, pool, stats.RowsFrom, stats.RowsTo); err != nil {
		return stats, fmt.Errorf("replay done, but refreshing the aggregates failed: %w", err)
	}
	log.Info("aggregates refreshed over the replayed rows", "from", stats.RowsFrom, "to", stats.RowsTo)
	return stats, analyzeWritten(ctx, pool, stats.RowsFrom, stats.RowsTo, log)
}
