package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"kohaku/pkg/logging"
	"kohaku/schema"
	"kohaku/writer/internal/importer"
	"kohaku/writer/internal/store"
)

// runImport is the import subcommand: it writes the reports of Sora's rtc_stats.jsonl
// files into the database, reports what it could not on stderr, and tells whether it
// rejected anything. Progress lines go to stderr when it is a terminal; the summary line
// always does.
func runImport(ctx context.Context, cfg Config, files []string, log *slog.Logger, stderr io.Writer) (rejected bool, err error) {
	stats, err := importFiles(ctx, cfg, files, log, stderr)
	fmt.Fprintln(stderr, stats.Summary())
	return stats.Rejected > 0, err
}

func importFiles(ctx context.Context, cfg Config, files []string, log *slog.Logger, stderr io.Writer) (importer.Stats, error) {
	start := time.Now()
	fail := func(err error) (importer.Stats, error) {
		return importer.Stats{Elapsed: time.Since(start), Unfinished: true}, err
	}
	pool, err := openPool(ctx, cfg.DatabaseURL)
	if err != nil {
		return fail(err)
	}
	defer pool.Close()
	if cfg.Migrate {
		// The import may be the first program to see this database.
		if err := prepareDatabase(ctx, cfg, pool, false, log); err != nil {
			return fail(err)
		}
	}
	st := store.New(pool, log, prometheus.NewRegistry())
	o := importer.Options{
		BatchSize:    cfg.BatchSize,
		WriteTimeout: cfg.WriteTimeout,
		Rejected:     stderr,
		Logger:       log,
	}
	if logging.IsTerminal(stderr) {
		o.Progress = stderr
	}
	stats, err := importer.Import(ctx, st, files, o)
	if err != nil || stats.RowsFrom.IsZero() {
		return stats, err
	}
	// Continuous aggregates skip rows written behind their refresh window, where a log's
	// rows usually are.
	if err := schema.RefreshAggregatesPool(ctx, pool, stats.RowsFrom, stats.RowsTo); err != nil {
		return stats, fmt.Errorf("import done, but refreshing the aggregates failed: %w", err)
	}
	log.Info("aggregates refreshed over the imported rows", "from", stats.RowsFrom, "to", stats.RowsTo)
	return stats, nil
}
