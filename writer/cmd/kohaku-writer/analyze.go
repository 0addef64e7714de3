package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"iter"
	"log/slog"
	"sort"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
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
// (30 s by default) each writer analyzes from the earliest report time that it stored since
// its last run (store.TakeWritten) up to now, and nothing when it stored nothing.
//
// Up to now, and not only up to the latest report stored: a report that arrives late
// changes how the reports after it are judged (their counters grow from it, a gap before
// them closes), and those may have been stored and analyzed already. Nothing older needs
// analyzing again: the analysis files read what they need before the period themselves
// (schema.Analyze), and a report analyzed with its predecessor stays right until an
// earlier report arrives, which starts the next period. An earlier version analyzed the
// last two minutes every run instead: each report four times, which at 800 reports a
// second took PostgreSQL as much CPU as storing them and held commits back by up to 3 s
// (kohaku-bench, end to end). Runs of several writers are serialized by schema.Analyze's
// lock and give the same rows, so they do no harm. Replay and import analyze the rows they
// wrote themselves, and `kohaku-writer analyze --since` recomputes any period.
//
// A periodic run analyzes its period connection set by connection set
// (schema.AnalyzeConnections: the same rows as one run), each set in a transaction of its
// own sized to take about analyzeSlice, with a rest as long as a set took before the next. In
// one transaction, a run over 30 s of 1,000 connections' reports held a PostgreSQL core
// for 6-8 s on a 2-core machine (13 s for the bench's multistream rooms), and the writer's
// commits waited behind it: over 40 s at half load, the end-to-end latency's p99 was
// 2.5-3.7 s against 0.4 s without the analysis (kohaku-bench, end to end); in sets, 0.56 s
// (Chromium reports) and 0.35 s (multistream). Cut by connections, not by time, because a
// score is a minute's: a period cut in pieces of seconds scores each minute again with
// every piece.
const (
	// analyzeSlice is about how long one set of connections of a periodic run takes.
	analyzeSlice = 250 * time.Millisecond
	// firstSlice is the number of connections in a run's first set; the next ones are
	// sized by the time a connection took in the set before.
	firstSlice = 20
	// analyzePeriod is the longest period that one schema.Analyze transaction covers:
	// the analyze subcommand cuts a long period into such pieces, which gives the same
	// rows (schema.Analyze's contract) and bounds the work of each transaction.
	analyzePeriod = time.Hour
	// lateAnalysis is how far back a periodic run must reach for the writer to log it: a
	// backlog drained after an outage, not reports that came a batch late.
	lateAnalysis = 2 * time.Minute
)

// analyzer runs the periodic analysis of the run subcommand.
type analyzer struct {
	pool  *pgxpool.Pool
	st    *store.Store // what it stored is analyzed too
	every time.Duration
	log   *slog.Logger

	pending pending // the report times stored and not yet analyzed, kept over a failed run

	seconds  prometheus.Histogram
	failures prometheus.Counter
}

func newAnalyzer(pool *pgxpool.Pool, st *store.Store, every time.Duration, log *slog.Logger, reg prometheus.Registerer) *analyzer {
	f := promauto.With(reg)
	return &analyzer{
		pool: pool, st: st, every: every, log: log,
		seconds: f.NewHistogram(prometheus.HistogramOpts{
			Name:    "kohaku_writer_analysis_seconds",
			Help:    "Time of one periodic analysis of the stored rows (issue intervals, scores) over the last minutes, the rests between its sets of connections included.",
			Buckets: prometheus.ExponentialBuckets(0.01, 2, 12),
		}),
		failures: f.NewCounter(prometheus.CounterOpts{
			Name: "kohaku_writer_analysis_failures_total",
			Help: "Periodic analyses that failed; the next one covers their period again.",
		}),
	}
}

// run analyzes every a.every, until ctx ends, from the earliest report time stored since the
// last successful run up to now. A failed run is logged and counted, and the next one
// covers its period again.
func (a *analyzer) run(ctx context.Context) {
	t := time.NewTicker(a.every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		a.pending.widen(a.st.TakeWritten())
		since, until, ok := a.pending.period(time.Now())
		if !ok {
			continue // nothing stored: nothing can have changed
		}
		if until.Sub(since) > lateAnalysis {
			a.log.Info("analyzing reports stored late", "since", since)
		}
		start := time.Now()
		s, err := a.analyzeSliced(ctx, since, until)
		a.seconds.Observe(time.Since(start).Seconds())
		switch {
		case err != nil && ctx.Err() != nil:
			return
		case err != nil:
			a.failures.Inc()
			a.log.Warn("periodic analysis failed; the next one covers its period again", "err", err)
		default:
			a.pending = pending{}
			a.log.Debug("periodic analysis done", "since", since, "until", until, "connections", s.connections, "sets", s.periods, "elapsed", s.elapsed)
		}
	}
}

// analyzeSliced analyzes [since, until] as analyzeRange does, in periods of at most
// analyzePeriod, and each period for the connections seen in it (sora_connection, stored
// in the same transaction as their stats rows) in sets of connections, resting before
// each set but the first as long as the set before took.
func (a *analyzer) analyzeSliced(ctx context.Context, since, until time.Time) (analyzeSummary, error) {
	s := analyzeSummary{since: since, until: until, rows: map[string]int64{}}
	start := time.Now()
	defer func() { s.elapsed = time.Since(start) }()
	n, took := firstSlice, time.Duration(0)
	for from, to := range periods(since, until) {
		ids, err := connectionsSeen(ctx, a.pool, from, to)
		if err != nil {
			return s, err
		}
		s.connections += len(ids)
		for len(ids) > 0 {
			if took > 0 && !sleepCtx(ctx, took) {
				return s, ctx.Err()
			}
			set := ids[:min(n, len(ids))]
			ids = ids[len(set):]
			t0 := time.Now()
			res, err := schema.AnalyzeConnections(ctx, a.pool, from, to, set)
			if err != nil {
				return s, err
			}
			took = time.Since(t0)
			s.add(res)
			n = nextSlice(len(set), took)
		}
	}
	return s, nil
}

// periods cuts [since, until] into consecutive periods of at most analyzePeriod, oldest
// first; an empty range is one period.
func periods(since, until time.Time) iter.Seq2[time.Time, time.Time] {
	return func(yield func(from, to time.Time) bool) {
		for from := since; ; from = from.Add(analyzePeriod) {
			to := from.Add(analyzePeriod)
			if to.After(until) {
				to = until
			}
			if !yield(from, to) || !to.Before(until) {
				return
			}
		}
	}
}

// nextSlice returns how many connections the next set should hold when the last set of n
// took took: as many as take about analyzeSlice at the same pace, at most twice as many as
// before, at least one.
func nextSlice(n int, took time.Duration) int {
	if took <= 0 {
		return 2 * n
	}
	next := int(float64(n) * float64(analyzeSlice) / float64(took))
	return max(1, min(next, 2*n))
}

// connectionsSeen returns, in order, the connections with a message time in [since,
// until]: their first and last seen enclose every one of their stored reports.
func connectionsSeen(ctx context.Context, pool *pgxpool.Pool, since, until time.Time) ([]string, error) {
	rows, err := pool.Query(ctx, `SELECT connection_id FROM kohaku_connections_seen($1, $2)
ORDER BY connection_id`, since, until)
	if err != nil {
		return nil, fmt.Errorf("list the connections to analyze: %w", err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("list the connections to analyze: %w", err)
	}
	return ids, nil
}

// sleepCtx waits d, or less if ctx ends first; it reports whether it waited d.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// pending is a range of report times stored and not yet analyzed.
type pending struct {
	from, to time.Time
	any      bool
}

// widen adds the range [from, to] that store.TakeWritten returned, if ok.
func (p *pending) widen(from, to time.Time, ok bool) {
	if !ok {
		return
	}
	if !p.any || from.Before(p.from) {
		p.from = from
	}
	if !p.any || to.After(p.to) {
		p.to = to
	}
	p.any = true
}

// period returns what a run at now analyzes: from the earliest pending report time up to
// now, or to the latest one when it is stamped ahead of this clock; false when nothing is
// pending.
func (p *pending) period(now time.Time) (since, until time.Time, ok bool) {
	if !p.any {
		return time.Time{}, time.Time{}, false
	}
	return p.from, later(now, p.to), true
}

// later returns the later of a and b.
func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// analyzeSummary adds up what the schema.Analyze runs over one period did.
type analyzeSummary struct {
	since, until time.Time
	periods      int              // transactions: periods, or sets of connections
	connections  int              // for sets of connections: those of each period, added up
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

// add counts one schema.Analyze run.
func (s *analyzeSummary) add(res schema.AnalyzeResult) {
	s.periods++
	for _, f := range res.Files {
		if _, ok := s.rows[f.Name]; !ok {
			s.files = append(s.files, f.Name)
		}
		s.rows[f.Name] += f.Rows
	}
}

// analyzeRange runs schema.Analyze over [since, until] in pieces of at most analyzePeriod,
// oldest first, each its own transaction, writing a progress line to progress when it is
// not nil, and counts the issue intervals that overlap the period at the end.
func analyzeRange(ctx context.Context, pool *pgxpool.Pool, since, until time.Time, progress io.Writer) (analyzeSummary, error) {
	s := analyzeSummary{since: since, until: until, rows: map[string]int64{}}
	start := time.Now()
	defer func() { s.elapsed = time.Since(start) }()
	for from, to := range periods(since, until) {
		res, err := schema.Analyze(ctx, pool, from, to)
		if err != nil {
			s.elapsed = time.Since(start)
			return s, err
		}
		s.add(res)
		if progress != nil {
			fmt.Fprintf(progress, "analyze: up to %s, %d period(s) done\n", to.UTC().Format(time.RFC3339), s.periods)
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
