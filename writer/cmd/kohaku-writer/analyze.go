package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sort"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"kohaku/pkg/logging"
	"kohaku/schema"
	"kohaku/writer/internal/store"
)

// The analysis (schema.Analyze: issue intervals, quality scores) follows new reports by a
// periodic task of the run subcommand, not a TimescaleDB job, so that it works the same on
// plain PostgreSQL and needs nothing installed in the database: every KOHAKU_ANALYZE_EVERY
// (30 s by default) each writer analyzes the last analyzeLookback of row times, and the
// report times that it stored since its last run (store.TakeWritten), so that rows written
// long after their time (a backlog drained after an outage) are analyzed too. Runs of
// several writers are serialized by schema.Analyze's lock and give the same rows, so they
// do no harm. Replay and import analyze the rows they wrote themselves, and `kohaku-writer
// analyze --since` recomputes any period.
const (
	// analyzeLookback is how far back from now the periodic analysis reads: the reports
	// of the last two minutes, so that a report arriving up to about a minute and a half
	// late (a retried request, a slow batch) is still judged with its neighbours.
	analyzeLookback = 2 * time.Minute
	// analyzePeriod is the longest period that one schema.Analyze transaction covers:
	// the analyze subcommand cuts a long period into such pieces, which gives the same
	// rows (schema.Analyze's contract) and bounds the work of each transaction.
	analyzePeriod = time.Hour
)

// analyzer runs the periodic analysis of the run subcommand.
type analyzer struct {
	pool  *pgxpool.Pool
	st    *store.Store // what it stored is analyzed too
	every time.Duration
	log   *slog.Logger

	// pending is the range of report times stored and not yet analyzed, kept over a
	// failed run.
	pending struct {
		from, to time.Time
		any      bool
	}

	seconds  prometheus.Histogram
	failures prometheus.Counter
}

func newAnalyzer(pool *pgxpool.Pool, st *store.Store, every time.Duration, log *slog.Logger, reg prometheus.Registerer) *analyzer {
	f := promauto.With(reg)
	return &analyzer{
		pool: pool, st: st, every: every, log: log,
		seconds: f.NewHistogram(prometheus.HistogramOpts{
			Name:    "kohaku_writer_analysis_seconds",
			Help:    "Time of one periodic analysis of the stored rows (issue intervals, scores) over the last minutes.",
			Buckets: prometheus.ExponentialBuckets(0.01, 2, 12),
		}),
		failures: f.NewCounter(prometheus.CounterOpts{
			Name: "kohaku_writer_analysis_failures_total",
			Help: "Periodic analyses that failed; the next one covers their period again.",
		}),
	}
}

// run analyzes every a.every, until ctx ends, [now - analyzeLookback, now] widened to the
// report times stored since the last run. A failed run is logged and counted, and the next
// one covers its period again.
func (a *analyzer) run(ctx context.Context) {
	t := time.NewTicker(a.every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		since, until := a.period(time.Now())
		start := time.Now()
		s, err := analyzeRange(ctx, a.pool, since, until, nil)
		a.seconds.Observe(time.Since(start).Seconds())
		switch {
		case err != nil && ctx.Err() != nil:
			return
		case err != nil:
			a.failures.Inc()
			a.log.Warn("periodic analysis failed; the next one covers its period again", "err", err)
		default:
			a.pending.any = false
			a.log.Debug("periodic analysis done", "since", since, "until", until, "periods", s.periods, "elapsed", s.elapsed)
		}
	}
}

// period returns what a run at now analyzes: the last analyzeLookback, and the report
// times stored since the last successful run, however old.
func (a *analyzer) period(now time.Time) (since, until time.Time) {
	p := &a.pending
	if from, to, ok := a.st.TakeWritten(); ok {
		if !p.any || from.Before(p.from) {
			p.from = from
		}
		if !p.any || to.After(p.to) {
			p.to = to
		}
		p.any = true
	}
	since, until = now.Add(-analyzeLookback), now
	if p.any && p.from.Before(since) {
		since = p.from
		a.log.Info("analyzing reports stored after the live window", "since", since)
	}
	if p.any && p.to.After(until) {
		until = p.to // reports stamped ahead of this clock
	}
	return since, until
}

// analyzeSummary adds up what the schema.Analyze runs over one period did.
type analyzeSummary struct {
	since, until time.Time
	periods      int
	rows         map[string]int64 // by analysis file
	files        []string         // in the order they ran
	issues       map[string]int   // intervals overlapping the period, by kind
	elapsed      time.Duration
}

// Summary is the line that the analyze subcommand prints at the end.
func (s analyzeSummary) Summary() string {
	var b strings.Builder
	fmt.Fprintf(&b, "analyze: %s to %s in %d period(s)", s.since.UTC().Format(time.RFC3339), s.until.UTC().Format(time.RFC3339), s.periods)
	for _, f := range s.files {
		fmt.Fprintf(&b, ", %s %d rows", f, s.rows[f])
	}
	total := 0
	kinds := make([]string, 0, len(s.issues))
	for k, n := range s.issues {
		total += n
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	fmt.Fprintf(&b, "; %d issue intervals", total)
	if total > 0 {
		parts := make([]string, len(kinds))
		for i, k := range kinds {
			parts[i] = fmt.Sprintf("%s %d", k, s.issues[k])
		}
		fmt.Fprintf(&b, " (%s)", strings.Join(parts, ", "))
	}
	fmt.Fprintf(&b, ", %s in all", s.elapsed.Round(time.Millisecond))
	return b.String()
}

// analyzeRange runs schema.Analyze over [since, until] in pieces of at most analyzePeriod,
// oldest first, each its own transaction, writing a progress line to progress when it is
// not nil, and counts the issue intervals that overlap the period at the end.
func analyzeRange(ctx context.Context, pool *pgxpool.Pool, since, until time.Time, progress io.Writer) (analyzeSummary, error) {
	s := analyzeSummary{since: since, until: until, rows: map[string]int64{}}
	start := time.Now()
	defer func() { s.elapsed = time.Since(start) }()
	for from := since; ; from = from.Add(analyzePeriod) {
		to := from.Add(analyzePeriod)
		if to.After(until) {
			to = until
		}
		res, err := schema.Analyze(ctx, pool, from, to)
		if err != nil {
			s.elapsed = time.Since(start)
			return s, err
		}
		s.periods++
		for _, f := range res.Files {
			if _, ok := s.rows[f.Name]; !ok {
				s.files = append(s.files, f.Name)
			}
			s.rows[f.Name] += f.Rows
		}
		if progress != nil {
			fmt.Fprintf(progress, "analyze: up to %s, %d period(s) done\n", to.UTC().Format(time.RFC3339), s.periods)
		}
		if !to.Before(until) {
			break
		}
	}
	issues, err := countIssues(ctx, pool, since, until)
	s.issues = issues
	s.elapsed = time.Since(start)
	return s, err
}

// countIssues returns the issue intervals that overlap [since, until], by kind.
func countIssues(ctx context.Context, pool *pgxpool.Pool, since, until time.Time) (map[string]int, error) {
	rows, err := pool.Query(ctx, `SELECT kind, count(*) FROM kohaku_issue
WHERE started_at <= $2 AND ended_at >= $1 GROUP BY kind`, since, until)
	if err != nil {
		return nil, fmt.Errorf("count the issue intervals: %w", err)
	}
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var kind string
		var n int
		if err := rows.Scan(&kind, &n); err != nil {
			return nil, fmt.Errorf("count the issue intervals: %w", err)
		}
		out[kind] = n
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("count the issue intervals: %w", err)
	}
	return out, nil
}

// runAnalyze is the analyze subcommand: it recomputes the analysis (issue intervals,
// scores) of the rows stored with a time in [r.since, r.until] (up to now when r.until is
// zero), replacing what was there. Progress lines go to stderr when it is a terminal; the
// summary line always does.
func runAnalyze(ctx context.Context, cfg Config, r replayRange, log *slog.Logger, stderr io.Writer) error {
	until := r.until
	if until.IsZero() {
		until = time.Now()
	}
	pool, err := openPool(ctx, cfg.DatabaseURL, 1)
	if err != nil {
		return err
	}
	defer pool.Close()
	if cfg.Migrate {
		err = prepareDatabase(ctx, cfg, pool, false, log)
	} else {
		err = requireSchema(ctx, pool, false, log)
	}
	if err != nil {
		return err
	}
	var progress io.Writer
	if logging.IsTerminal(stderr) {
		progress = stderr
	}
	s, err := analyzeRange(ctx, pool, r.since, until, progress)
	fmt.Fprintln(stderr, s.Summary())
	return err
}

// analyzeWritten analyzes the period of the rows that a replay or an import wrote, so that
// it gives the same issues and scores as live traffic would have.
func analyzeWritten(ctx context.Context, pool *pgxpool.Pool, from, to time.Time, log *slog.Logger) error {
	if from.IsZero() {
		return nil
	}
	s, err := analyzeRange(ctx, pool, from, to, nil)
	if err != nil {
		return errors.Join(errors.New("the rows are written, but analyzing them failed; run kohaku-writer analyze over their period"), err)
	}
	log.Info("analysis recomputed over the written rows", "from", from, "to", to, "periods", s.periods, "elapsed", s.elapsed)
	return nil
}
