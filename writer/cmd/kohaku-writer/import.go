package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"time"

	"kohaku/pkg/logging"
	"kohaku/schema"
	"kohaku/writer/internal/importer"
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
	st, pool, err := openStore(ctx, cfg, log)
	if err != nil {
		return fail(err)
	}
	defer pool.Close()
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
	return stats, analyzeWritten(ctx, pool, stats.RowsFrom, stats.RowsTo, log)
}
