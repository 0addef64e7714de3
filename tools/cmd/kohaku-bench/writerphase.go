package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go/jetstream"

	"kohaku/pkg/normalize"
	"kohaku/pkg/sora"
	"kohaku/pkg/stream"
	"kohaku/schema"
	"kohaku/testsupport/proc"
)

// The writer phase fills the stream with distinct simulated messages, then starts
// kohaku-writer and times it from the moment its durable consumer exists until every
// message is acknowledged (each acknowledgement follows the commit of its rows), once per
// connection count (KOHAKU_WRITE_CONNECTIONS), each time on a refilled stream and emptied
// tables. The baseline copies the same rows, normalized beforehand and outside the timing,
// into the same tables, emptied first, right before each writer runs and right after: pgx
// CopyFrom, batches of the same number of messages, one transaction per batch, tables in
// name order, on as many connections as the writer used, each copying its share of the
// batches (batch i on connection i mod n). Normalizing is thus part of the writer's figure
// and not of the baseline's: the writer has to normalize fast enough to keep COPY busy.
// The target's baseline copies each batch's rows in stream order, as a plain bulk insert
// would; the writer copies them by connection, which costs PostgreSQL less, so a second
// CopyFrom in that order shows how much of the writer's figure is that and how much is
// its own overhead.

// writerConnections are the connection counts measured, the writer's default last: that
// writer keeps running for the end-to-end phase.
var writerConnections = []int{2, 1}

// writerPhase measures the writer against raw CopyFrom, with each of writerConnections.
func (b *bench) writerPhase(ctx context.Context) error {
	// Ten reports of each connection, five seconds apart, a day ago: far from the end to
	// end phase's rows.
	simStart := time.Now().Add(-24 * time.Hour).Truncate(time.Second)
	bodies, err := simulate(b.o.messages, 10, 1, simStart)
	if err != nil {
		return err
	}
	w := &b.res.Writer
	w.Messages, w.BatchSize = len(bodies), b.o.batchSize

	batches, rows, normTook, err := normalizeBatches(bodies, b.o.batchSize)
	if err != nil {
		return err
	}
	w.Rows = rows
	w.NormalizeMsPerMsg = ms(normTook) / float64(len(bodies))
	pool, err := pgxpool.New(ctx, b.dbURL)
	if err != nil {
		return fmt.Errorf("database pool: %w", err)
	}
	defer pool.Close()
	c := copier{b: b, pool: pool, batches: batches, rows: rows}
	w.Runs = make([]writerRun, len(writerConnections))
	// The first round on a new database was the slowest of the phase, by up to a half,
	// whichever it was: one round that counts for nothing goes first.
	warm, err := c.copy(ctx, batches.inStream, writerConnections[0])
	if err != nil {
		return err
	}
	b.progress("copyfrom %d rows on %s in %.2fs: warm-up, not counted", rows, connections(writerConnections[0]), warm.took.Seconds())
	// Each writer's drain between two rounds of its baseline, so that a change in the
	// machine's speed weighs on both sides; the copies in stream order, the target's,
	// nearest the drain.
	for i, n := range writerConnections {
		run := &w.Runs[i]
		run.Connections = n
		if err := c.byConnection(ctx, run); err != nil {
			return err
		}
		if err := c.inStream(ctx, run); err != nil {
			return err
		}
		if err := b.drainRun(ctx, pool, bodies, rows, i); err != nil {
			return err
		}
		if i == len(w.Runs)-1 {
			// The last writer keeps running for the end-to-end phase; the analysis
			// reads what it stored, before the copies empty the tables.
			if err := b.analyze(ctx, pool, simStart, len(bodies)); err != nil {
				return err
			}
		} else {
			err := b.writerProc.stop()
			b.writerProc = nil
			if err != nil {
				return fmt.Errorf("stop kohaku-writer: %w", err)
			}
		}
		if err := c.inStream(ctx, run); err != nil {
			return err
		}
		if err := c.byConnection(ctx, run); err != nil {
			return err
		}
		run.CopyRowsPerSec = float64(2*rows) / run.CopySeconds
		run.Ratio = ratio(run.WriterRowsPerSec, run.CopyRowsPerSec)
		run.ByConnectionCopyRowsPerSec = float64(2*rows) / run.ByConnectionCopySeconds
		run.ByConnectionRatio = ratio(run.WriterRowsPerSec, run.ByConnectionCopyRowsPerSec)
		cpu := run.WriterCPUSeconds + run.PostgresCPUSeconds + run.NATSCPUSeconds
		run.CPUBoundRatio = ratio(run.CopySeconds/2, cpu/float64(runtime.NumCPU()))
		b.progress("writer on %s %.0f rows/s, CopyFrom %.0f rows/s (both rounds): %.2f; the drain's %.2fs of CPU on %d cores allow at most %.2f; CopyFrom by connection %.0f rows/s: %.2f",
			connections(run.Connections), run.WriterRowsPerSec, run.CopyRowsPerSec, run.Ratio, cpu, runtime.NumCPU(), run.CPUBoundRatio,
			run.ByConnectionCopyRowsPerSec, run.ByConnectionRatio)
	}
	w.WriterMsgsPerSec = w.Runs[len(w.Runs)-1].WriterMsgsPerSec
	b.progress("normalizing took %.3f ms a message, not timed", w.NormalizeMsPerMsg)
	return nil
}

// drainRun times a writer draining the bodies on the database connections of run i of
// the writer phase, into emptied tables that must then hold rows rows, and keeps the
// writer running as b.writerProc.
func (b *bench) drainRun(ctx context.Context, pool *pgxpool.Pool, bodies [][]byte, rows int64, i int) error {
	run := &b.res.Writer.Runs[i]
	lastSeq, err := b.refill(ctx, pool, bodies, i)
	if err != nil {
		return err
	}
	pgBefore, natsBefore := postgresCPU(), b.natsProc.cpu()
	p, admin, took, err := b.drain(ctx, lastSeq, run.Connections)
	if err != nil {
		return err
	}
	b.writerProc, b.writerAdmin = p, admin
	// Every backend of this writer started with it, so their times so far are the
	// drain's (and the connections' start).
	run.WriterBackendSeconds, err = writerBackends(ctx, pool)
	if err != nil {
		return err
	}
	wm := writerMetrics(admin)
	run.FlushSeconds, run.CopyInFlushSeconds, run.UpsertInFlushSeconds, run.Flushes = wm.flushSum, wm.copySum, wm.upsertSum, wm.flushCount
	run.WriterCPUSeconds = p.cpu().Seconds()
	run.PostgresCPUSeconds = (postgresCPU() - pgBefore).Seconds()
	run.NATSCPUSeconds = (b.natsProc.cpu() - natsBefore).Seconds()
	rss, err := p.peakRSS()
	if err != nil {
		return err
	}
	b.res.Memory = append(b.res.Memory, memory{Process: "kohaku-writer", Phase: drainPhase(run.Connections), PeakMiB: rss})
	written, err := statsRows(ctx, pool)
	if err != nil {
		return err
	}
	if written != rows {
		return fmt.Errorf("the writer stored %d rows, normalizing the same messages gives %d", written, rows)
	}
	run.WriterSeconds = took.Seconds()
	run.WriterRowsPerSec = float64(written) / took.Seconds()
	run.WriterMsgsPerSec = float64(len(bodies)) / took.Seconds()
	b.progress("writer   %s, %d messages, %d rows in %.2fs: %.0f rows/s, %.0f messages/s, rss %.0f MiB, cpu %.2fs (postgres %.2fs, nats %.2fs), in writes %.2fs (copy %.2fs, sora_connection upsert %.2fs)",
		connections(run.Connections), len(bodies), written, took.Seconds(), run.WriterRowsPerSec, run.WriterMsgsPerSec, rss, run.WriterCPUSeconds, run.PostgresCPUSeconds, run.NATSCPUSeconds,
		run.FlushSeconds, run.CopyInFlushSeconds, run.UpsertInFlushSeconds)
	return nil
}

// analyze runs the analysis of what the last writer stored, as kohaku-writer analyze runs
// it: issues and scores must keep up with the writer.
func (b *bench) analyze(ctx context.Context, pool *pgxpool.Pool, simStart time.Time, reports int) error {
	w := &b.res.Writer
	an, err := schema.Analyze(ctx, pool, simStart.Add(-time.Minute), simStart.Add(10*reportEvery+time.Minute))
	if err != nil {
		return err
	}
	w.AnalyzeSeconds = an.Elapsed.Seconds()
	w.AnalyzeMsgsPerSec = float64(reports) / an.Elapsed.Seconds()
	w.AnalyzeRatio = ratio(w.AnalyzeMsgsPerSec, w.Runs[len(w.Runs)-1].WriterMsgsPerSec)
	var files []string
	for _, f := range an.Files {
		files = append(files, fmt.Sprintf("%s %.2fs", f.Name, f.Elapsed.Seconds()))
	}
	b.progress("analysis of the %d reports in %.2fs (%s): %.0f reports/s, %.2f of the writer's %.0f messages/s",
		reports, w.AnalyzeSeconds, strings.Join(files, ", "), w.AnalyzeMsgsPerSec, w.AnalyzeRatio, w.Runs[len(w.Runs)-1].WriterMsgsPerSec)
	return nil
}

// copier copies the writer phase's rows with CopyFrom into emptied tables.
type copier struct {
	b       *bench
	pool    *pgxpool.Pool
	batches copyBatches
	rows    int64
}

// inStream copies the rows in stream order, the target's baseline, on run's connections
// and adds the figures to run.
func (c copier) inStream(ctx context.Context, run *writerRun) error {
	r, err := c.copy(ctx, c.batches.inStream, run.Connections)
	if err != nil {
		return err
	}
	run.CopySeconds += r.took.Seconds()
	run.CopyPostgresCPUSeconds += r.postgres.Seconds()
	run.CopyBackendSeconds = run.CopyBackendSeconds.add(r.backends)
	run.CopyRounds = append(run.CopyRounds, float64(c.rows)/r.took.Seconds())
	c.b.progress("copyfrom %d rows on %s in %.2fs: %.0f rows/s, postgres cpu %.2fs",
		c.rows, connections(run.Connections), r.took.Seconds(), float64(c.rows)/r.took.Seconds(), r.postgres.Seconds())
	return nil
}

// byConnection copies the rows in the writer's order on run's connections and adds the
// figures to run.
func (c copier) byConnection(ctx context.Context, run *writerRun) error {
	r, err := c.copy(ctx, c.batches.byConnection, run.Connections)
	if err != nil {
		return err
	}
	run.ByConnectionCopySeconds += r.took.Seconds()
	run.ByConnectionBackendSeconds = run.ByConnectionBackendSeconds.add(r.backends)
	c.b.progress("copyfrom %d rows by connection on %s in %.2fs: %.0f rows/s",
		c.rows, connections(run.Connections), r.took.Seconds(), float64(c.rows)/r.took.Seconds())
	return nil
}

// copyRound is what one CopyFrom took: time, its backends' times, and the CPU time of
// every PostgreSQL process meanwhile.
type copyRound struct {
	took     time.Duration
	backends schedTimes
	postgres time.Duration
}

// copy empties the tables, copies batches on conns connections, checks that every row
// arrived and empties the tables again. Only the copy itself is measured.
func (c copier) copy(ctx context.Context, batches []batch, conns int) (copyRound, error) {
	if err := truncate(ctx, c.pool); err != nil {
		return copyRound{}, err
	}
	pgBefore := postgresCPU()
	took, backends, err := rawCopy(ctx, c.b.dbURL, batches, conns)
	if err != nil {
		return copyRound{}, err
	}
	r := copyRound{took: took, backends: backends, postgres: postgresCPU() - pgBefore}
	if err := wantRows(ctx, c.pool, c.rows); err != nil {
		return copyRound{}, err
	}
	return r, truncate(ctx, c.pool)
}

// wantRows returns an error unless the stats tables hold want rows.
func wantRows(ctx context.Context, pool *pgxpool.Pool, want int64) error {
	if copied, err := statsRows(ctx, pool); err != nil || copied != want {
		return errors.Join(err, fmt.Errorf("CopyFrom stored %d rows, want %d", copied, want))
	}
	return nil
}

// writerBackends returns the scheduler's times of the running writer's database backends,
// the sessions named kohaku-writer (the writer's name for them unless the database URL
// gives another: then there are none, and the table leaves the figure out).
func writerBackends(ctx context.Context, pool *pgxpool.Pool) (schedTimes, error) {
	rows, err := pool.Query(ctx, `SELECT pid FROM pg_stat_activity
		WHERE datname = current_database() AND application_name = 'kohaku-writer'`)
	if err != nil {
		return schedTimes{}, fmt.Errorf("the writer's backends: %w", err)
	}
	pids, err := pgx.CollectRows(rows, pgx.RowTo[int32])
	if err != nil {
		return schedTimes{}, fmt.Errorf("the writer's backends: %w", err)
	}
	ps := make([]uint32, len(pids))
	for i, p := range pids {
		ps[i] = uint32(p)
	}
	return backendTimes(ps), nil
}

// drainPhase names the memory figure of a drain on n connections.
func drainPhase(n int) string {
	return "writer drain, " + connections(n)
}

// refill empties the stats tables, deletes the writer's durable consumer, and fills the
// stream with bodies alone (fill round round, see prefill), as a backlog for a writer
// starting afresh. It returns the stream's last sequence.
func (b *bench) refill(ctx context.Context, pool *pgxpool.Pool, bodies [][]byte, round int) (uint64, error) {
	if err := truncate(ctx, pool); err != nil {
		return 0, err
	}
	s, err := b.js.Stream(ctx, stream.Name)
	if err != nil {
		return 0, fmt.Errorf("stream: %w", err)
	}
	if err := s.DeleteConsumer(ctx, stream.Consumer); err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
		return 0, fmt.Errorf("delete consumer: %w", err)
	}
	if err := s.Purge(ctx); err != nil { // the receiver phase's or the last drain's messages
		return 0, fmt.Errorf("purge stream: %w", err)
	}
	b.progress("pre-filling the stream with %d messages", len(bodies))
	start := time.Now()
	if err := b.prefill(ctx, bodies, round); err != nil {
		return 0, err
	}
	b.res.Writer.PrefillPerSec = float64(len(bodies)) / time.Since(start).Seconds()
	info, err := s.Info(ctx)
	if err != nil {
		return 0, fmt.Errorf("stream info: %w", err)
	}
	if info.State.Msgs != uint64(len(bodies)) {
		return 0, fmt.Errorf("the stream holds %d messages, want %d", info.State.Msgs, len(bodies))
	}
	return info.State.LastSeq, nil
}

// prefill publishes bodies as the receiver does (subject, headers, deduplication id), with
// a window of asynchronous publishes. Fill round r > 0 adds r to each deduplication id:
// JetStream would drop a body published again within its duplicate window.
func (b *bench) prefill(ctx context.Context, bodies [][]byte, round int) error {
	js, err := jetstream.New(b.nc, jetstream.WithPublishAsyncMaxPending(1024))
	if err != nil {
		return fmt.Errorf("jetstream: %w", err)
	}
	typ := sora.TypeUserAgent
	now := time.Now()
	for _, body := range bodies {
		msg := stream.NewMsg(typ, body, now, "kohaku-bench")
		if round > 0 {
			msg.Header.Set(stream.HeaderMsgID, msg.Header.Get(stream.HeaderMsgID)+"/"+strconv.Itoa(round))
		}
		if _, err := js.PublishMsgAsync(msg); err != nil {
			return fmt.Errorf("publish: %w", err)
		}
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-ctx.Done():
		return errStopped
	case <-time.After(5 * time.Minute):
		return errors.New("pre-filling the stream did not finish within 5 minutes")
	}
	return nil
}

// drain starts kohaku-writer writing on connections connections and returns it, and the
// time from its consumer's creation until every message up to lastSeq was acknowledged.
func (b *bench) drain(ctx context.Context, lastSeq uint64, connections int) (*child, string, time.Duration, error) {
	admin, err := proc.PickAddr()
	if err != nil {
		return nil, "", 0, err
	}
	p, err := b.start("kohaku-writer", b.writer, nil,
		"KOHAKU_DATABASE_URL="+b.dbURL, "KOHAKU_NATS_URL="+b.natsURL, "KOHAKU_ADMIN_LISTEN="+admin,
		"KOHAKU_BATCH_SIZE="+strconv.Itoa(b.o.batchSize), "KOHAKU_MAX_ACK_PENDING="+strconv.Itoa((connections+3)*b.o.batchSize),
		"KOHAKU_WRITE_CONNECTIONS="+strconv.Itoa(connections), "KOHAKU_ANALYZE_EVERY="+writerAnalyzeEvery.String(),
		"KOHAKU_MIGRATE=false", "KOHAKU_LOG_FORMAT=json", "KOHAKU_LOG_LEVEL=warn", "KOHAKU_PPROF=true")
	if err != nil {
		return nil, "", 0, err
	}
	b.progress("kohaku-writer: profiles at http://%s/debug/pprof/", admin)
	var cons jetstream.Consumer
	var started time.Time
	wait := 5 * time.Millisecond
	deadline := time.Now().Add(10 * time.Minute)
	for time.Now().Before(deadline) {
		select {
		case <-p.Done():
			return nil, "", 0, fmt.Errorf("kohaku-writer exited: %v; its log:\n%s", p.Err(), p.tail())
		default:
		}
		if err := sleepCtx(ctx, wait); err != nil {
			return nil, "", 0, err
		}
		if cons == nil {
			c, err := b.js.Consumer(ctx, stream.Name, stream.Consumer)
			if err != nil {
				continue // not created yet
			}
			cons, started = c, time.Now()
		}
		info, err := cons.Info(ctx)
		if err != nil {
			continue
		}
		if info.NumPending == 0 && info.NumAckPending == 0 && info.AckFloor.Stream >= lastSeq {
			return p, admin, time.Since(started), nil
		}
		// Each poll is a JetStream API request, whose CPU nats-server takes from the
		// writer and PostgreSQL: 400 a second cost it a third of what delivering the
		// messages did. Far from the end it polls rarely, near it (the last batches of
		// every connection, most of a second) often enough to time the end to 5 ms.
		wait = 5 * time.Millisecond
		if info.NumPending+uint64(info.NumAckPending) > uint64(2*b.o.batchSize*connections) {
			wait = 100 * time.Millisecond
		}
	}
	return nil, "", 0, fmt.Errorf("kohaku-writer did not drain the stream within 10 minutes; its log:\n%s", p.tail())
}

// batch is the rows of batchSize messages by table, and the tables in name order.
type batch struct {
	tables []string
	rows   map[string][][]any
}

// normalizeBatches normalizes bodies, in parallel, into batches of batchSize messages. It
// returns the batches, their row count and how long normalizing took on one core.
func normalizeBatches(bodies [][]byte, batchSize int) (copyBatches, int64, time.Duration, error) {
	all := make([]*normalize.Rows, len(bodies))
	workers := runtime.GOMAXPROCS(0)
	errs := make(chan error, workers)
	var cpu time.Duration
	times := make(chan time.Duration, workers)
	for w := range workers {
		go func() {
			start := time.Now()
			var err error
			for i := w; i < len(bodies) && err == nil; i += workers {
				all[i], err = normalize.Message(sora.TypeUserAgent, bodies[i])
			}
			times <- time.Since(start)
			errs <- err
		}()
	}
	var failed error
	for range workers {
		cpu += <-times
		failed = errors.Join(failed, <-errs)
	}
	if failed != nil {
		return copyBatches{}, 0, 0, fmt.Errorf("normalize: %w", failed)
	}
	var n int64
	for _, r := range all {
		n += int64(r.Count)
	}
	var bs copyBatches
	for chunk := range slices.Chunk(all, batchSize) {
		bs.inStream = append(bs.inStream, newBatch(chunk))
		// As the writer orders a batch's rows (store.byConnection): by connection id,
		// a connection's reports in stream order.
		byConn := slices.Clone(chunk)
		slices.SortStableFunc(byConn, func(x, y *normalize.Rows) int { return strings.Compare(connectionID(x), connectionID(y)) })
		bs.byConnection = append(bs.byConnection, newBatch(byConn))
	}
	return bs, n, cpu, nil
}

// copyBatches are the rows of the writer phase's messages for CopyFrom, in batches of the
// writer's size: in stream order, the baseline, and in the order in which the writer copies
// them, for comparison.
type copyBatches struct{ inStream, byConnection []batch }

// newBatch puts the rows of msgs, in that order, into one batch.
func newBatch(msgs []*normalize.Rows) batch {
	bt := batch{rows: map[string][][]any{}}
	for _, r := range msgs {
		for table, rs := range r.Tables {
			bt.rows[table] = append(bt.rows[table], rs...)
		}
	}
	bt.tables = slices.Sorted(maps.Keys(bt.rows))
	return bt
}

func connectionID(r *normalize.Rows) string {
	if r.Connection == nil {
		return ""
	}
	return r.Connection.ConnectionID
}

// rawCopy copies the batches with CopyFrom, one transaction per batch, on conns
// connections at once, batch i on connection i mod conns, and returns how long that took
// and the scheduler's times of their database backends meanwhile.
func rawCopy(ctx context.Context, dbURL string, batches []batch, conns int) (time.Duration, schedTimes, error) {
	cs := make([]*pgx.Conn, conns)
	pids := make([]uint32, conns)
	for i := range cs {
		c, err := pgx.Connect(ctx, dbURL)
		if err != nil {
			return 0, schedTimes{}, fmt.Errorf("connect: %w", err)
		}
		defer c.Close(context.WithoutCancel(ctx))
		cs[i], pids[i] = c, c.PgConn().PID()
	}
	columns := map[string][]string{}
	for _, t := range normalize.StatsTables() {
		columns[t] = normalize.Columns(t)
	}
	runtime.GC() // not during the timing
	before := backendTimes(pids)
	start := time.Now()
	errs := make([]error, conns)
	var wg sync.WaitGroup
	for g, conn := range cs {
		wg.Go(func() {
			for i := g; i < len(batches); i += conns {
				bt := batches[i]
				err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
					for _, table := range bt.tables {
						if _, err := tx.CopyFrom(ctx, pgx.Identifier{table}, columns[table], pgx.CopyFromRows(bt.rows[table])); err != nil {
							return fmt.Errorf("copy %s: %w", table, err)
						}
					}
					return nil
				})
				if err != nil {
					errs[g] = err
					return
				}
			}
		})
	}
	wg.Wait()
	took := time.Since(start)
	if err := errors.Join(errs...); err != nil {
		return 0, schedTimes{}, err
	}
	return took, backendTimes(pids).sub(before), nil
}

// flushStats are sums from the writer's /metrics: the seconds spent in database writes
// (kohaku_writer_flush_seconds) and how many there were, and the seconds of COPY and of
// the sora_connection upsert within them (kohaku_writer_copy_seconds). What the rest of a
// drain's time went to is pulling and normalizing, or waiting for it. The writer's
// periodic analyses, their seconds and count (kohaku_writer_analysis_seconds), come too.
type flushStats struct {
	flushSum, copySum, upsertSum float64
	flushCount                   int64
	analysisSum                  float64
	analysisCount                int64
}

// writerMetrics reads flushStats from the writer's admin address; zero when it cannot.
func writerMetrics(admin string) flushStats {
	var fs flushStats
	resp, err := http.Get("http://" + admin + "/metrics")
	if err != nil {
		return fs
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		name, value, ok := strings.Cut(sc.Text(), " ")
		if !ok {
			continue
		}
		v, err := strconv.ParseFloat(value, 64)
		if err != nil {
			continue
		}
		switch {
		case name == "kohaku_writer_flush_seconds_sum":
			fs.flushSum += v
		case name == "kohaku_writer_flush_seconds_count":
			fs.flushCount += int64(v)
		case name == `kohaku_writer_copy_seconds_sum{table="`+normalize.TableConnection+`"}`:
			fs.upsertSum += v
		case strings.HasPrefix(name, "kohaku_writer_copy_seconds_sum"):
			fs.copySum += v
		case name == "kohaku_writer_analysis_seconds_sum":
			fs.analysisSum = v
		case name == "kohaku_writer_analysis_seconds_count":
			fs.analysisCount = int64(v)
		}
	}
	return fs
}
