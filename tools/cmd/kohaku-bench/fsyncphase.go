package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"kohaku/testsupport/proc"
	"kohaku/tools/internal/sim"
	"kohaku/writer/embedded"
)

// The fsync phase measures what syncing every write costs the receiver. Two JetStream
// servers, each in a child process with its own storage directory, differ only in their
// sync policy: nats-server's default (a background sync every two minutes) and always
// (a sync before each PubAck). Each gets a receiver of its own, and the benchmark posts
// distinct bodies to both in turn, rounds interleaved as in the receiver phase, with
// fsyncWorkers requests in flight: h2load's one repeated body would take JetStream's
// duplicate path, which writes nothing and so syncs nothing.

// fsyncWorkers is the requests in flight at once in the fsync phase.
const fsyncWorkers = 64

// fsyncPolicies are the policies compared, the default first.
var fsyncPolicies = []embedded.Sync{{}, {Always: true}}

// fsyncPhase measures the receiver with each policy and records the ratio.
func (b *bench) fsyncPhase(ctx context.Context) error {
	pool, err := simulate(1000, 1, 3, time.Now())
	if err != nil {
		return err
	}
	at := make([]int, len(pool))
	for i, body := range pool {
		if at[i], err = stampAt(body); err != nil {
			return err
		}
	}
	type target struct {
		sync   embedded.Sync
		url    string
		client *http.Client
	}
	var targets []target
	var children []*child // stopped at the end; the cleanups stop them on an early return
	for _, s := range fsyncPolicies {
		addr, err := proc.PickAddr()
		if err != nil {
			return err
		}
		name := "nats-sync-" + s.String()
		ns, err := b.start(name, b.self, []string{"nats", "-listen", addr, "-dir", filepath.Join(b.dir, name), "-sync", s.String()})
		if err != nil {
			return err
		}
		if err := ns.waitTCP(addr, 30*time.Second); err != nil {
			return err
		}
		rp, raddr, err := b.startReceiver("kohaku-receiver-sync-"+s.String(), "nats://"+addr)
		if err != nil {
			return err
		}
		children = append(children, rp, ns)
		url := "http://" + raddr + "/collector"
		client, err := sim.NewClient(url, sim.ClientOptions{Timeout: 30 * time.Second})
		if err != nil {
			return err
		}
		targets = append(targets, target{s, url, client})
	}

	// Every body posted in the phase gets an envelope timestamp of its own, one
	// microsecond after the last: no two are the same message.
	var seq atomic.Int64
	base := time.Now().Truncate(time.Microsecond)
	next := func() []byte {
		n := seq.Add(1)
		i := int(n) % len(pool)
		return stamped(pool[i], at[i], base.Add(time.Duration(n)*time.Microsecond))
	}
	results := make([]loadResult, len(targets))
	latencies := make([][]float64, len(targets))
	round := b.o.duration / time.Duration(b.o.rounds)
	for r := range b.o.rounds {
		for ti, t := range targets {
			if err := sleepCtx(ctx, time.Second); err != nil {
				return err
			}
			res, lat := closedLoad(ctx, t.client, t.url, next, fsyncWorkers, b.o.warmup, round)
			if ctx.Err() != nil {
				return errStopped
			}
			if res.Requests == 0 {
				return fmt.Errorf("sync %s: no request was answered 204 in %s", t.sync, round)
			}
			latencies[ti] = append(latencies[ti], lat...)
			results[ti].pool(res, latencies[ti])
			b.progress("round %d sync %-7s %8.0f req/s  p50 %6.2f ms  p99 %7.2f ms  failed %d",
				r+1, t.sync, res.PerSecond, percentile(lat, 0.5), percentile(lat, 0.99), res.Failed)
		}
	}
	f := &b.res.Fsync
	f.Workers = fsyncWorkers
	f.Default, f.Always = results[0], results[1]
	f.Ratio = ratio(f.Always.PerSecond, f.Default.PerSecond)
	b.progress("%s", f.summary())
	var errs []error
	for _, c := range children {
		errs = append(errs, c.stop())
	}
	return errors.Join(errs...)
}

// closedLoad posts a body from next to url from workers goroutines, each sending its next
// request when its last was answered, for warmup and then duration, and returns what was
// answered during duration: 204s count as requests, anything else as failed. The latencies
// are those of the 204s, in ms.
func closedLoad(ctx context.Context, client *http.Client, url string, next func() []byte, workers int, warmup, duration time.Duration) (loadResult, []float64) {
	start := time.Now().Add(warmup)
	end := start.Add(duration)
	var (
		mu     sync.Mutex
		ok     int64
		failed int64
		lat    []float64
		wg     sync.WaitGroup
	)
	for range workers {
		wg.Go(func() {
			for ctx.Err() == nil && time.Now().Before(end) {
				sent := time.Now()
				a := post(ctx, client, url, next())
				done := time.Now()
				if sent.Before(start) || done.After(end) {
					continue // outside the measurement
				}
				mu.Lock()
				if a.err == nil && a.status == http.StatusNoContent {
					ok++
					lat = append(lat, ms(a.took))
				} else {
					failed++
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	res := loadResult{Requests: ok, Failed: failed, Seconds: duration.Seconds()}
	res.PerSecond = float64(ok) / res.Seconds
	res.P50ms, res.P99ms, res.MaxMs = percentile(lat, 0.5), percentile(lat, 0.99), percentile(lat, 1)
	return res, lat
}
