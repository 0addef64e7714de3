package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// results is every figure of a run; it is written as JSON so that runs can be compared.
type results struct {
	Started  time.Time      `json:"started"`
	Finished time.Time      `json:"finished"`
	Quick    bool           `json:"quick"`
	Phases   []string       `json:"phases"` // those that ran
	Machine  machine        `json:"machine"`
	Settings settings       `json:"settings"`
	Receiver []receiverCase `json:"receiver"`
	// Duplicates is the receiver and the baseline sent one body over and over, which
	// JetStream stores once: an extra line, with no target.
	Duplicates receiverCase `json:"duplicates"`
	Fsync      fsyncResult  `json:"fsync"`
	Writer     writerResult `json:"writer"`
	EndToEnd   []endToEnd   `json:"end_to_end"`
	Memory     []memory     `json:"memory"`
	Targets    []target     `json:"targets"`
}

type machine struct {
	CPUs       int    `json:"cpus"`
	GoVersion  string `json:"go_version"`
	PostgreSQL string `json:"postgresql"`
}

type settings struct {
	Levels      []level `json:"levels"`
	Warmup      float64 `json:"warmup_s"`
	Duration    float64 `json:"duration_s"` // per target and case, over all rounds
	Rounds      int     `json:"rounds"`
	Messages    int     `json:"messages"`
	BatchSize   int     `json:"batch_size"`
	E2EDuration float64 `json:"e2e_duration_s"`
	PollEveryMs float64 `json:"poll_every_ms"`
}

// fsyncResult is the fsync phase: the receiver storing distinct bodies on a JetStream server
// that syncs before every PubAck (sync_interval: always) and on one with nats-server's
// default background sync.
type fsyncResult struct {
	Workers int        `json:"workers"` // requests in flight
	Default loadResult `json:"default"`
	Always  loadResult `json:"always"`
	Ratio   float64    `json:"ratio"` // always / default, requests per second
}

// summary is the phase's figure in one line.
func (f fsyncResult) summary() string {
	return fmt.Sprintf("fsync always vs default: %.0f req/s vs %.0f req/s, ratio %.2f (p99 %.1f ms vs %.1f ms, %d in flight)",
		f.Always.PerSecond, f.Default.PerSecond, f.Ratio, f.Always.P99ms, f.Default.P99ms, f.Workers)
}

type writerResult struct {
	Messages          int     `json:"messages"`
	Rows              int64   `json:"rows"`
	BatchSize         int     `json:"batch_size"`
	PrefillPerSec     float64 `json:"prefill_msgs_per_s"`
	NormalizeMsPerMsg float64 `json:"normalize_ms_per_msg"` // CPU time of normalize.Message, not in either timing
	// Runs are the drains, one per connection count (KOHAKU_WRITE_CONNECTIONS), each
	// with its CopyFrom baseline on as many connections.
	Runs []writerRun `json:"runs"`
	// WriterMsgsPerSec is the drain rate of the last run's writer, the one that keeps
	// running for the end-to-end phase.
	WriterMsgsPerSec float64 `json:"writer_msgs_per_s"`
	// The analysis (issues and scores, schema.Analyze) of the messages the last writer
	// stored, in one run over their period after the drain.
	AnalyzeSeconds    float64 `json:"analyze_s"`
	AnalyzeMsgsPerSec float64 `json:"analyze_msgs_per_s"`
	AnalyzeRatio      float64 `json:"analyze_ratio"` // analysis / writer, messages per second
}

// writerRun is one drain of the writer phase, on a number of database connections, and
// raw CopyFrom on as many.
type writerRun struct {
	Connections            int       `json:"connections"`
	WriterSeconds          float64   `json:"writer_s"`
	WriterRowsPerSec       float64   `json:"writer_rows_per_s"`
	WriterMsgsPerSec       float64   `json:"writer_msgs_per_s"`
	WriterCPUSeconds       float64   `json:"writer_cpu_s"`           // user and system time of the writer process
	PostgresCPUSeconds     float64   `json:"postgres_cpu_s"`         // of every postgres process, while the writer drained
	NATSCPUSeconds         float64   `json:"nats_cpu_s"`             // of nats-server, delivering and taking acknowledgements
	FlushSeconds           float64   `json:"writer_flush_s"`         // in database writes (kohaku_writer_flush_seconds), all connections
	CopyInFlushSeconds     float64   `json:"writer_copy_s"`          // of which COPY (kohaku_writer_copy_seconds)
	UpsertInFlushSeconds   float64   `json:"writer_upsert_s"`        // and the sora_connection upsert (its table's)
	Flushes                int64     `json:"writer_flushes"`         // transactions
	CopySeconds            float64   `json:"copy_s"`                 // both rounds
	CopyRounds             []float64 `json:"copy_rounds_rows_per_s"` // right before and right after the writer
	CopyPostgresCPUSeconds float64   `json:"copy_postgres_cpu_s"`
	// The database backends of the writer during its drain, and of CopyFrom in both
	// rounds: the same rows cost PostgreSQL more CPU, and a longer wait for a core, when
	// the writer works on the same cores.
	WriterBackendSeconds schedTimes `json:"writer_backends"`
	CopyBackendSeconds   schedTimes `json:"copy_backends"`
	CopyRowsPerSec       float64    `json:"copy_rows_per_s"` // over both rounds
	Ratio                float64    `json:"ratio"`           // writer / CopyFrom, rows per second
	// CopyFrom of the same rows in the order in which the writer copies them (by
	// connection id): cheaper for PostgreSQL than the stream's order. Not the target's
	// baseline, which copies the rows as they come; it shows the writer's own overhead.
	ByConnectionCopySeconds    float64    `json:"copy_by_connection_s"` // both rounds
	ByConnectionBackendSeconds schedTimes `json:"copy_by_connection_backends"`
	ByConnectionCopyRowsPerSec float64    `json:"copy_by_connection_rows_per_s"`
	ByConnectionRatio          float64    `json:"by_connection_ratio"` // writer / CopyFrom by connection
	// CPUBoundRatio is the highest Ratio the machine's cores allow: the drain cannot take
	// less than the CPU time of the writer, PostgreSQL and nats-server over the number of
	// cores, against the time CopyFrom took.
	CPUBoundRatio float64 `json:"cpu_bound_ratio"`
}

// writerTarget is the name of the target of the writer's run on n connections.
func writerTarget(n int) string {
	return "writer rows/s / raw CopyFrom, " + connections(n)
}

// connections is "1 connection", "2 connections" and so on.
func connections(n int) string {
	if n == 1 {
		return "1 connection"
	}
	return fmt.Sprintf("%d connections", n)
}

// scaling is the writer's rows per second on the most connections measured over those on
// one, and that count; 0 when the runs do not have both.
func (w writerResult) scaling() (float64, int) {
	var one, most writerRun
	for _, r := range w.Runs {
		if r.Connections == 1 {
			one = r
		}
		if r.Connections > most.Connections {
			most = r
		}
	}
	if one.Connections == 0 || most.Connections < 2 {
		return 0, 0
	}
	return ratio(most.WriterRowsPerSec, one.WriterRowsPerSec), most.Connections
}

type endToEnd struct {
	Body         string  `json:"body"`                     // chromium or multistream
	Estimate     float64 `json:"estimate_per_s"`           // 1/(1/R + 1/W): R best receiver rate, W writer drain rate
	Committed1s  float64 `json:"capacity_committed_per_s"` // committed per second while Estimate was offered
	MaxSustained float64 `json:"max_sustained_per_s"`      // the lesser of the two
	Load         float64 `json:"load"`                     // share of MaxSustained
	Rate         float64 `json:"rate_per_s"`               // the schedule: Load * MaxSustained
	SendSeconds  float64 `json:"send_s"`
	Table        string  `json:"table"` // where commits were observed
	Sent         int     `json:"sent"`
	Answered     int     `json:"answered_204"`
	Failed       int     `json:"failed"`
	Committed    int     `json:"committed"`
	Missing      int     `json:"missing"`
	P50ms        float64 `json:"p50_ms"` // due time to commit seen
	P99ms        float64 `json:"p99_ms"`
	MaxMs        float64 `json:"max_ms"`
	HTTPP50ms    float64 `json:"http_p50_ms"` // POST to 204
	HTTPP99ms    float64 `json:"http_p99_ms"`
	// The median of the first and of the last quarter of the requests: a rise means the
	// rate was more than the pipeline sustains.
	FirstQuarterP50ms float64 `json:"first_quarter_p50_ms"`
	LastQuarterP50ms  float64 `json:"last_quarter_p50_ms"`
	// MaxLag is the writer consumer's largest backlog seen (pending plus unacknowledged).
	MaxLag uint64 `json:"max_consumer_lag"`
	// Flushes and FlushMs are the writer's transactions during the phase and their
	// average duration.
	Flushes int64   `json:"writer_flushes"`
	FlushMs float64 `json:"writer_flush_avg_ms"`
	// CPUSeconds is the CPU time each process used during the phase; postgres counts
	// every postgres process, whoever its client.
	CPUSeconds map[string]float64 `json:"cpu_s"`
}

type memory struct {
	Process string  `json:"process"`
	Phase   string  `json:"phase"`
	PeakMiB float64 `json:"peak_rss_mib"` // VmHWM during the phase
}

// target is one of the targets and whether this run met it.
type target struct {
	Name   string  `json:"name"`
	Value  float64 `json:"value"`
	Limit  float64 `json:"limit"`
	AtMost bool    `json:"at_most"` // the value must be at most Limit, else at least
	Met    bool    `json:"met"`
}

// The targets of issues 8 and 16.
const (
	receiverShare  = 0.90 // of the publish-and-ack baseline, on distinct bodies
	writerShare    = 0.90 // of raw CopyFrom on as many connections, each connection count
	analysisShare  = 1.0  // of the writer's messages per second: the analysis keeps up (issue 15)
	e2eP99ms       = 1000
	receiverRSSMiB = 150
	writerRSSMiB   = 300
)

// evaluate checks the targets.
func (r *results) evaluate() {
	add := func(name string, v, limit float64, atMost bool) {
		met := v >= limit
		if atMost {
			met = v <= limit
		}
		r.Targets = append(r.Targets, target{name, v, limit, atMost, met})
	}
	for _, c := range r.Receiver {
		add(receiverTarget(c), c.Ratio, receiverShare, false)
	}
	if r.ran(phaseWriter) {
		for _, run := range r.Writer.Runs {
			add(writerTarget(run.Connections), run.Ratio, writerShare, false)
		}
		add("analysis reports/s / writer messages/s", r.Writer.AnalyzeRatio, analysisShare, false)
	}
	for _, e := range r.EndToEnd {
		add(e2eTarget(e), e.P99ms, e2eP99ms, true)
	}
	var recv, drain float64
	for _, m := range r.Memory {
		switch {
		case m.Process == "kohaku-receiver":
			recv = max(recv, m.PeakMiB)
		case m.Process == "kohaku-writer" && strings.HasPrefix(m.Phase, "writer drain"):
			drain = max(drain, m.PeakMiB)
		}
	}
	if r.ran(phaseReceiver) {
		add("receiver peak RSS, MiB", recv, receiverRSSMiB, true)
	}
	if r.ran(phaseWriter) {
		add("writer peak RSS while draining, MiB", drain, writerRSSMiB, true)
	}
}

// ran reports whether the phase ran.
func (r *results) ran(phase string) bool { return slices.Contains(r.Phases, phase) }

// e2eTarget is the name of an end to end run's target.
func e2eTarget(e endToEnd) string {
	return "end to end p99 at half load, " + e.Body + ", ms"
}

// receiverTarget is the name of a receiver case's target.
func receiverTarget(c receiverCase) string {
	return "receiver " + c.name() + " req/s / publish-and-ack"
}

// write writes r as indented JSON to path.
func (r *results) write(path string) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return fmt.Errorf("encode results: %w", err)
	}
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("write results: %w", err)
	}
	return nil
}

// table prints every figure: value, baseline, ratio, target and whether it was met.
func (r *results) table(w io.Writer) {
	tw := tabwriter.NewWriter(w, 2, 0, 2, ' ', 0)
	row := func(cells ...string) { fmt.Fprintln(tw, strings.Join(cells, "\t")) }
	lat := func(l loadResult) string { return fmt.Sprintf("%.2f / %.2f", l.P50ms, l.P99ms) }
	row("FIGURE", "VALUE", "BASELINE", "RATIO", "TARGET", "MET")
	targets := map[string]target{}
	for _, t := range r.Targets {
		targets[t.Name] = t
	}
	verdict := func(name string) (string, string) {
		t, ok := targets[name]
		if !ok {
			return "", ""
		}
		op := ">="
		if t.AtMost {
			op = "<="
		}
		return op + " " + trim(t.Limit), yesNo(t.Met)
	}
	cases := r.Receiver
	if r.ran(phaseReceiver) {
		cases = append(cases, r.Duplicates)
	}
	for _, c := range cases {
		n := "receiver " + c.name()
		tg, met := verdict(receiverTarget(c))
		row(n+" req/s", f0(c.Receiver.PerSecond), f0(c.Publish.PerSecond)+" publish", f2(c.Ratio), tg, met)
		row(fmt.Sprintf("  %d B bodies, p50 / p99 ms", c.Bytes), lat(c.Receiver), lat(c.Publish)+" publish", "", "", "")
		row("  server CPU µs/request", f0(c.Receiver.CPUPerRequestUs), f0(c.Publish.CPUPerRequestUs)+" publish", "", "", "")
		if c.Receiver.Failed+c.Publish.Failed > 0 {
			row("  failed requests", fmt.Sprint(c.Receiver.Failed), fmt.Sprint(c.Publish.Failed)+" publish", "", "", "")
		}
	}
	if fs := r.Fsync; r.ran(phaseFsync) {
		row("receiver fsync always req/s", f0(fs.Always.PerSecond), f0(fs.Default.PerSecond)+" default sync", f2(fs.Ratio), "", "")
		row("receiver fsync always p50 / p99 ms", lat(fs.Always), lat(fs.Default)+" default sync", "", "", "")
	}
	if wr := r.Writer; r.ran(phaseWriter) {
		for _, run := range wr.Runs {
			tg, met := verdict(writerTarget(run.Connections))
			if t, ok := targets[writerTarget(run.Connections)]; ok && !t.Met && run.CPUBoundRatio > 0 && run.CPUBoundRatio < t.Limit {
				met += " (target above the CPU bound)" // no writer could meet it on these cores
			}
			row("writer rows/s, "+connections(run.Connections), f0(run.WriterRowsPerSec),
				f0(run.CopyRowsPerSec)+" CopyFrom", f2(run.Ratio), tg, met)
			row("  writer messages/s", f0(run.WriterMsgsPerSec), "", "", "", "")
			if run.ByConnectionCopyRowsPerSec > 0 {
				row("  against CopyFrom in the writer's row order", f0(run.WriterRowsPerSec),
					f0(run.ByConnectionCopyRowsPerSec)+" CopyFrom", f2(run.ByConnectionRatio), "", "")
			}
			row("  at most, by the drain's CPU / cores", "", "", f2(run.CPUBoundRatio), "", "")
			// Where the connections' time went, against CopyFrom's: the upsert is work that
			// CopyFrom does not do, and COPY slows when the writer's own CPU work competes
			// with PostgreSQL's for the cores.
			rest := run.FlushSeconds - run.CopyInFlushSeconds - run.UpsertInFlushSeconds
			row("  in writes s: COPY / sora_connection upsert / rest", fmt.Sprintf("%.2f / %.2f / %.2f", run.CopyInFlushSeconds, run.UpsertInFlushSeconds, rest),
				fmt.Sprintf("%.2f CopyFrom", run.CopySeconds/2*float64(run.Connections)), "", "", "")
			if w, c := run.WriterBackendSeconds, run.CopyBackendSeconds; w.OnCPU > 0 && c.OnCPU > 0 {
				row("  database backends s: on a core / waiting for one", fmt.Sprintf("%.2f / %.2f", w.OnCPU.Seconds(), w.Waiting.Seconds()),
					fmt.Sprintf("%.2f / %.2f CopyFrom", c.OnCPU.Seconds()/2, c.Waiting.Seconds()/2), "", "", "")
				if o := run.ByConnectionBackendSeconds; o.OnCPU > 0 {
					row("", "", fmt.Sprintf("%.2f / %.2f by connection", o.OnCPU.Seconds()/2, o.Waiting.Seconds()/2), "", "", "")
				}
			}
		}
		if x, n := wr.scaling(); n > 0 {
			row(fmt.Sprintf("writer rows/s, %d connections / 1 connection", n), f2(x), "", "", "", "")
		}
		tg, met := verdict("analysis reports/s / writer messages/s")
		row("analysis reports/s (issues, scores)", f0(wr.AnalyzeMsgsPerSec), f0(wr.WriterMsgsPerSec)+" writer", f2(wr.AnalyzeRatio), tg, met)
		row(fmt.Sprintf("  %d messages, %d rows, batches of", wr.Messages, wr.Rows), fmt.Sprint(wr.BatchSize), "", "", "", "")
	}
	for _, e := range r.EndToEnd {
		tg, met := verdict(e2eTarget(e))
		row(fmt.Sprintf("end to end, %s, at %.0f/s (%.0f%%) p50 / p99 ms", e.Body, e.Rate, 100*e.Load), fmt.Sprintf("%.1f / %.1f", e.P50ms, e.P99ms), "", "", tg+" (p99)", met)
		row("  highest sustained rate: estimated / committed", fmt.Sprintf("%.0f / %.0f", e.Estimate, e.Committed1s), "", "", "", "")
		row("  POST to 204 p50 / p99 ms", fmt.Sprintf("%.1f / %.1f", e.HTTPP50ms, e.HTTPP99ms), "", "", "", "")
		row("  sent / committed / failed", fmt.Sprintf("%d / %d / %d", e.Sent, e.Committed, e.Failed), "", "", "", "")
	}
	for _, m := range r.Memory {
		var limit float64
		switch {
		case m.Process == "kohaku-receiver":
			limit = receiverRSSMiB
		case strings.HasPrefix(m.Phase, "writer drain"):
			limit = writerRSSMiB
		}
		tg, met := "", ""
		if limit > 0 {
			tg, met = "<= "+trim(limit), yesNo(m.PeakMiB <= limit)
		}
		row(m.Process+" peak RSS MiB ("+m.Phase+")", f0(m.PeakMiB), "", "", tg, met)
	}
	tw.Flush()
	missed := 0
	for _, t := range r.Targets {
		if !t.Met {
			missed++
		}
	}
	fmt.Fprintln(w)
	if r.ran(phaseFsync) {
		fmt.Fprintln(w, r.Fsync.summary())
	}
	fmt.Fprintf(w, "%d of %d targets met\n", len(r.Targets)-missed, len(r.Targets))
}

func yesNo(ok bool) string {
	if ok {
		return "yes"
	}
	return "NO"
}

func f0(v float64) string { return fmt.Sprintf("%.0f", v) }
func f2(v float64) string { return fmt.Sprintf("%.2f", v) }

func trim(v float64) string {
	if v == float64(int64(v)) {
		return fmt.Sprint(int64(v))
	}
	return fmt.Sprintf("%.2f", v)
}
