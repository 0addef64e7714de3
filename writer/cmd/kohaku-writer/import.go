package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"

	"github.com/prometheus/client_golang/prometheus"

	"kohaku/schema"
	"kohaku/writer/internal/importer"
	"kohaku/writer/internal/store"
)

// runImport is the import subcommand: it writes the reports of Sora's rtc_stats.jsonl
// files into the database, reports what it could not on stderr, and tells whether it
// rejected anything. Progress lines go to stderr when it is a terminal; the summary line
// always does.
func runImport(ctx context.Context, cfg Config, files []string, log *slog.Logger, stderr io.Writer) (rejected bool, err error) {
	pool, err := openPool(ctx, cfg.DatabaseURL)
	if err != nil {
		return false, err
	}
	defer pool.Close()
	if cfg.Migrate {
		// The import may be the first program to see this database.
		if err := prepareDatabase(ctx, cfg, pool, false, log); err != nil {
			return false, err
		}
	}
	st := store.New(pool, prometheus.NewRegistry(), log)
	o := importer.Options{
		BatchSize:    cfg.BatchSize,
		WriteTimeout: cfg.WriteTimeout,
		Rejected:     stderr,
		Logger:       log,
	}
	if isTerminal(stderr) {
		o.Progress = stderr
	}
	stats, err := importer.Import(ctx, st, files, o)
	if err == nil && !stats.RowsFrom.IsZero() {
		// Continuous aggregates skip rows written behind their refresh window, where a
		// log's rows usually are.
		if err = schema.RefreshAggregatesPool(ctx, pool, stats.RowsFrom, stats.RowsTo); err != nil {
			err = fmt.Errorf("import done, but refreshing the aggregates failed: %w", err)
		} else {
			log.Info("aggregates refreshed over the imported rows", "from", stats.RowsFrom, "to", stats.RowsTo)
		}
	}
	fmt.Fprintln(stderr, stats.Summary())
	return stats.Rejected > 0, err
}

// isTerminal reports whether w is a terminal, where progress lines help a person waiting.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}
