package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"kohaku/pkg/normalize"
	"kohaku/pkg/sora"
	"kohaku/pkg/stream"
	"kohaku/tools/internal/sim"
)

// The end to end phase posts distinct bodies to the receiver at half the highest rate that
// receiver and writer sustain together on this machine, on an open-loop schedule. That
// rate is first estimated from the receiver phase's best rate R and the writer's drain
// rate W, each measured with the machine to itself: both are CPU-bound there, so together
// they would sustain x with x/R + x/W = 1. A capacity run then offers x and takes what the
// writer committed per second, if less, as the highest sustained rate. At half of it,
// request i is due at start + i/rate whether or not earlier ones were answered, and its
// envelope timestamp is that due time, to the microsecond, unique in the run: the row's
// time column is the send time. A poller asks the database every --poll-every for the rows
// of one table whose time lies between the oldest unseen and the newest sent; a row's
// commit time is taken as the moment the first answer that holds it arrived. The latency
// is that minus the due time: it includes any wait for a free client slot, and overstates
// the commit time by at most one poll interval plus the query's own time.

// The capacity run and the measured run each last longer than the writer's analysis
// period, so that each holds one of its periodic analyses (PostgreSQL work of the order of
// storing the reports): the highest sustained rate is then the writer's with its analysis,
// as in production, and the latency includes how long an analysis holds commits back. With
// 10 s runs, a capacity run between two analyses measured 2,418 Chromium reports/s
// committed, where the writer's flushes, with an analysis beside them, kept up with about
// 1,300/s: the run at "half" of it fell behind for all of its 20 s (p99 1.4 s). The
// measured run starts once the writer has analyzed the capacity run's reports
// (waitAnalyzed): starting during that analysis, a 35 s run read p99 1.3 s, its first
// quarter's p50 twice its last's.

// writerAnalyzeEvery is KOHAKU_ANALYZE_EVERY of the writers the benchmark starts: the
// writer's default, set so that the end to end runs can outlast it.
const writerAnalyzeEvery = 30 * time.Second

// e2eWorkers is the most requests in flight at once, like Sora's many channels.
const e2eWorkers = 64

// e2eBodyKinds are the bodies the phase sends, a run each: the simulated Chromium reports
// and the same as multistream reports of multistreamStreams received streams.
var e2eBodyKinds = []string{"chromium", "multistream"}

// endToEndPhase measures the latency from POST to commit, for each of e2eBodyKinds.
func (b *bench) endToEndPhase(ctx context.Context) error {
	for _, kind := range e2eBodyKinds {
		b.res.EndToEnd = append(b.res.EndToEnd, endToEnd{Body: kind})
		if err := b.endToEnd(ctx, &b.res.EndToEnd[len(b.res.EndToEnd)-1]); err != nil {
			return fmt.Errorf("%s bodies: %w", kind, err)
		}
	}
	return nil
}

// endToEnd runs the phase with e.Body's bodies and fills e.
func (b *bench) endToEnd(ctx context.Context, e *endToEnd) error {
	pool, at, table, rowsPerBody, err := e2eBodies(e.Body)
	if err != nil {
		return err
	}
	e.Table = table
	best := 0.0
	for _, c := range b.res.Receiver {
		if c.Body == e.Body && c.Feed == exporterFeed.Name { // what this phase sends
			best = max(best, c.Receiver.PerSecond)
		}
	}
	// Receiver and writer share the machine: at their highest joint rate x, each uses the
	// share of it that x takes of its own highest rate, x/R + x/W = 1. The writer drained
	// the simulated reports: a larger report takes it longer by its rows.
	w := b.res.Writer.WriterMsgsPerSec
	if wr := b.res.Writer; wr.Messages > 0 && rowsPerBody > 0 {
		w *= float64(wr.Rows) / float64(wr.Messages) / rowsPerBody
	}
	if best > 0 && w > 0 {
		e.Estimate = 1 / (1/best + 1/w)
	}
	if e.Estimate < 2 {
		return fmt.Errorf("the estimated highest sustained rate, %.1f/s, leaves nothing to measure", e.Estimate)
	}
	db, err := pgxpool.New(ctx, b.dbURL)
	if err != nil {
		return fmt.Errorf("database pool: %w", err)
	}
	defer db.Close()
	client, err := sim.NewClient(b.receiverURL, sim.ClientOptions{Timeout: 30 * time.Second})
	if err != nil {
		return err
	}

	// The capacity run offers the estimate and counts what the writer commits per second
	// meanwhile: at low concurrency a request costs more CPU than under the receiver phase's load, so the
	// estimate can be too high. It skips the first second, and waits for the backlog to
	// clear before the measured run.
	capTotal := int(b.o.capDuration.Seconds() * e.Estimate)
	b.progress("capacity: posting %d distinct %s bodies at %.0f/s for %s", capTotal, e.Body, e.Estimate, b.o.capDuration)
	b.receiverProc.resetPeak()
	b.writerProc.resetPeak()
	ct := newTracker(time.Now().Add(100*time.Millisecond).Truncate(time.Microsecond), rateInterval(e.Estimate), capTotal)
	type mark struct {
		floor uint64
		at    time.Time
	}
	first := make(chan mark, 1)
	go func() {
		sleepCtx(ctx, time.Until(ct.due[0].Add(time.Second)))
		first <- mark{b.ackFloor(ctx), time.Now()}
	}()
	b.sendPaced(ctx, client, ct, pool, at)
	floor1, t1 := b.ackFloor(ctx), time.Now()
	m0 := <-first
	floor0, t0 := m0.floor, m0.at
	if ctx.Err() != nil {
		return errStopped
	}
	e.Committed1s = float64(floor1-floor0) / t1.Sub(t0).Seconds()
	e.MaxSustained = min(e.Estimate, e.Committed1s)
	if err := b.waitDrained(ctx, 2*time.Minute); err != nil {
		return err
	}
	if err := b.waitAnalyzed(ctx, time.Now(), 3*writerAnalyzeEvery); err != nil {
		return err
	}
	if err := b.notePeaks("capacity, " + e.Body); err != nil {
		return err
	}
	b.progress("capacity: %.0f/s committed while %.0f/s were offered", e.Committed1s, e.Estimate)

	e.Load = b.o.e2eLoad
	e.Rate = e.MaxSustained * e.Load
	if e.Rate < 1 {
		return fmt.Errorf("the highest sustained rate, %.1f/s, leaves nothing to measure", e.MaxSustained)
	}
	total := int(b.o.e2eDuration.Seconds() * e.Rate)
	b.progress("posting %d distinct %s bodies at %.0f/s (%.0f%% of %.0f/s) for %s", total, e.Body, e.Rate, 100*e.Load, e.MaxSustained, b.o.e2eDuration)

	b.receiverProc.resetPeak()
	b.writerProc.resetPeak()
	before := writerMetrics(b.writerAdmin)
	cpuBefore := b.cpuUse()
	t := newTracker(time.Now().Add(100*time.Millisecond).Truncate(time.Microsecond), rateInterval(e.Rate), total)

	pctx, stopPolling := context.WithCancel(ctx)
	polled := make(chan error, 1)
	go func() { polled <- t.poll(pctx, db, table, b.o.pollEvery) }()
	lagged := make(chan uint64, 1)
	go func() { lagged <- b.watchLag(pctx) }()
	b.sendPaced(ctx, client, t, pool, at)
	e.SendSeconds = time.Since(t.due[0]).Seconds()
	// Wait for the last rows, then stop polling.
	deadline := time.Now().Add(30 * time.Second)
	for !t.allSeen() && time.Now().Before(deadline) && ctx.Err() == nil {
		time.Sleep(b.o.pollEvery)
	}
	stopPolling()
	e.MaxLag = <-lagged
	if err := <-polled; err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	if ctx.Err() != nil {
		return errStopped
	}
	t.summarize(e)
	e.CPUSeconds = map[string]float64{}
	for name, d := range b.cpuUse() {
		e.CPUSeconds[name] = (d - cpuBefore[name]).Seconds()
	}
	after := writerMetrics(b.writerAdmin)
	if e.Flushes = after.flushCount - before.flushCount; e.Flushes > 0 {
		e.FlushMs = 1000 * (after.flushSum - before.flushSum) / float64(e.Flushes)
	}
	if err := b.notePeaks("end to end, " + e.Body); err != nil {
		return err
	}
	b.progress("e2e      %s cpu seconds: %v", e.Body, e.CPUSeconds)
	b.progress("e2e      %s %d sent, %d answered 204, %d committed: p50 %.1f ms, p99 %.1f ms, max %.1f ms (204 p99 %.1f ms; p50 first quarter %.1f ms, last %.1f ms; lag <= %d; %d flushes of %.1f ms)",
		e.Body, e.Sent, e.Answered, e.Committed, e.P50ms, e.P99ms, e.MaxMs, e.HTTPP99ms, e.FirstQuarterP50ms, e.LastQuarterP50ms, e.MaxLag, e.Flushes, e.FlushMs)
	if e.Failed > 0 || e.Missing > 0 {
		return fmt.Errorf("%d requests failed (%s) and %d answered rows never appeared", e.Failed, t.lastProblem, e.Missing)
	}
	return nil
}

// e2eBodies returns distinct bodies of kind (see e2eBodyKinds) and where each one's
// envelope timestamp is, a table that every one of them has a row in, and their average
// row count. Chromium bodies are of 1000 simulated connections; multistream ones of 100
// (each holds 189 KB) of the simulated connections that receive audio and video, which
// multistream copies: every request is stamped with a time of its own, so bodies repeat
// as keys never do.
func e2eBodies(kind string) ([][]byte, []int, string, float64, error) {
	n := 1000
	if kind == "multistream" {
		n = 100
	}
	sims, err := simulate(4*n, 1, 2, time.Now())
	if err != nil {
		return nil, nil, "", 0, err
	}
	var bodies [][]byte
	var at []int
	count := map[string]int{}
	rows := 0
	for _, body := range sims {
		if len(bodies) == n {
			break
		}
		if kind == "multistream" {
			if body, err = multistream(body, multistreamStreams); err != nil {
				continue // a connection that receives no audio or no video
			}
		}
		k, err := stampAt(body)
		if err != nil {
			return nil, nil, "", 0, err
		}
		r, err := normalize.Message(sora.TypeUserAgent, body)
		if err != nil {
			return nil, nil, "", 0, fmt.Errorf("normalize a simulated body: %w", err)
		}
		bodies, at = append(bodies, body), append(at, k)
		rows += r.Count
		for t, rs := range r.Tables {
			if len(rs) > 0 {
				count[t]++
			}
		}
	}
	if len(bodies) < n {
		return nil, nil, "", 0, fmt.Errorf("%d simulated connections made %d %s bodies, want %d", len(sims), len(bodies), kind, n)
	}
	var common []string
	for t, n := range count {
		if n == len(bodies) && t != normalize.TableOther {
			common = append(common, t)
		}
	}
	if len(common) == 0 {
		return nil, nil, "", 0, errors.New("no table has a row of every simulated body")
	}
	slices.Sort(common)
	return bodies, at, common[0], float64(rows) / float64(len(bodies)), nil
}

// post sends one body and returns the status and the time to the answer.
func post(ctx context.Context, client *http.Client, url string, body []byte) answer {
	start := time.Now()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return answer{err: err}
	}
	req.Header.Set("content-type", "application/json")
	req.Header.Set(sora.HeaderExporterType, sora.TypeUserAgent)
	resp, err := client.Do(req)
	if err != nil {
		return answer{err: err}
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return answer{status: resp.StatusCode, took: time.Since(start)}
}

// watchLag samples the writer's consumer every 100 ms until ctx ends and returns the
// largest backlog seen: messages not yet delivered plus delivered and not yet acknowledged.
func (b *bench) watchLag(ctx context.Context) uint64 {
	var most uint64
	for {
		if c, err := b.js.Consumer(ctx, stream.Name, stream.Consumer); err == nil {
			if info, err := c.Info(ctx); err == nil {
				most = max(most, info.NumPending+uint64(info.NumAckPending))
			}
		}
		if sleepCtx(ctx, 100*time.Millisecond) != nil {
			return most
		}
	}
}

// cpuUse returns the CPU time used so far by the processes of the pipeline, PostgreSQL and
// the benchmark itself (the client and the poller of the end to end phase).
func (b *bench) cpuUse() map[string]time.Duration {
	return map[string]time.Duration{
		"kohaku-receiver": b.receiverProc.cpu(),
		"kohaku-writer":   b.writerProc.cpu(),
		"nats":            b.natsProc.cpu(),
		"postgres":        postgresCPU(),
		"kohaku-bench":    selfCPU(),
	}
}

// rateInterval is the time between two requests at rate per second.
func rateInterval(rate float64) time.Duration { return time.Duration(float64(time.Second) / rate) }

// sendPaced posts the requests of t at their due times from e2eWorkers workers, bodies
// taken in turn from pool and stamped with their due time, and returns when all were
// answered. A request whose due time finds every worker busy waits for one: the schedule
// does not slow down.
func (b *bench) sendPaced(ctx context.Context, client *http.Client, t *tracker, pool [][]byte, at []int) {
	jobs := make(chan int, len(t.due))
	var wg sync.WaitGroup
	for range e2eWorkers {
		wg.Go(func() {
			for i := range jobs {
				body := stamped(pool[i%len(pool)], at[i%len(pool)], t.due[i])
				t.answered(i, post(ctx, client, b.receiverURL, body))
			}
		})
	}
	timer := time.NewTimer(0)
	for i := range t.due {
		timer.Reset(time.Until(t.due[i]))
		select {
		case <-ctx.Done():
		case <-timer.C:
		}
		if ctx.Err() != nil {
			break
		}
		t.sent(i)
		jobs <- i
	}
	close(jobs)
	wg.Wait()
}

// ackFloor returns the stream sequence up to which the writer acknowledged every message.
func (b *bench) ackFloor(ctx context.Context) uint64 {
	c, err := b.js.Consumer(ctx, stream.Name, stream.Consumer)
	if err != nil {
		return 0
	}
	info, err := c.Info(ctx)
	if err != nil {
		return 0
	}
	return info.AckFloor.Stream
}

// waitDrained waits until the writer acknowledged every message of the stream.
func (b *bench) waitDrained(ctx context.Context, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if c, err := b.js.Consumer(ctx, stream.Name, stream.Consumer); err == nil {
			if info, err := c.Info(ctx); err == nil && info.NumPending == 0 && info.NumAckPending == 0 {
				return nil
			}
		}
		if err := sleepCtx(ctx, 50*time.Millisecond); err != nil {
			return err
		}
	}
	return fmt.Errorf("the writer did not catch up within %s", timeout)
}

// waitAnalyzed waits until the writer has finished a periodic analysis that started after
// since: one that covers every report stored before, so that the measured run does not start
// with the analysis of the capacity run's reports, a debt that a system at half load does
// not carry. An analysis' start is its end less its time (kohaku_writer_analysis_seconds).
func (b *bench) waitAnalyzed(ctx context.Context, since time.Time, timeout time.Duration) error {
	last := writerMetrics(b.writerAdmin)
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if err := sleepCtx(ctx, 100*time.Millisecond); err != nil {
			return err
		}
		m := writerMetrics(b.writerAdmin)
		if n := m.analysisCount - last.analysisCount; n > 0 {
			took := time.Duration((m.analysisSum - last.analysisSum) / float64(n) * float64(time.Second))
			if time.Now().Add(-took).After(since) {
				return nil
			}
			last = m
		}
	}
	return fmt.Errorf("the writer finished no analysis that started after the capacity run within %s", timeout)
}

// notePeaks records the peak RSS of the receiver and the writer during phase.
func (b *bench) notePeaks(phase string) error {
	for _, p := range []struct {
		name string
		p    *child
	}{{"kohaku-receiver", b.receiverProc}, {"kohaku-writer", b.writerProc}} {
		rss, err := p.p.peakRSS()
		if err != nil {
			return err
		}
		b.res.Memory = append(b.res.Memory, memory{Process: p.name, Phase: phase, PeakMiB: rss})
	}
	return nil
}
