package main

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"time"

	"kohaku/testsupport/proc"
	"kohaku/writer/embedded"
)

// The fsync phase measures what syncing every write costs the receiver. Two JetStream
// servers, each in a child process with its own storage directory, differ only in their
// sync policy: nats-server's default (a background sync every two minutes) and always
// (a sync before each PubAck). Each gets a receiver of its own, and the load generator
// posts distinct Chromium reports to both in turn, rounds interleaved as in the receiver
// phase, fsyncLevel of them in flight: a repeated body would take JetStream's duplicate
// path, which writes nothing and so syncs nothing.

// fsyncLevel is the load of the fsync phase: one h2c connection, 64 requests in flight.
var fsyncLevel = level{1, 64}

// fsyncPolicies are the policies compared, the default first.
var fsyncPolicies = []embedded.Sync{{}, {Always: true}}

// fsyncPhase measures the receiver with each policy and records the ratio.
func (b *bench) fsyncPhase(ctx context.Context) error {
	data, err := fixtureBody()
	if err != nil {
		return err
	}
	body, err := newStampedBody(data)
	if err != nil {
		return err
	}
	type target struct {
		sync embedded.Sync
		load load
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
		targets = append(targets, target{s, load{url: "http://" + raddr + exporterFeed.path, header: exporterFeed.header,
			typ: exporterFeed.typ, level: fsyncLevel, body: body, stamp: b.stamp}})
	}

	results := make([]loadResult, len(targets))
	latencies := make([][]float64, len(targets))
	round := b.o.duration / time.Duration(b.o.rounds)
	for r := range b.o.rounds {
		for ti, t := range targets {
			if err := sleepCtx(ctx, time.Second); err != nil {
				return err
			}
			res, lat, err := t.load.run(ctx, b.o.warmup, round)
			if err != nil {
				return fmt.Errorf("sync %s: %w", t.sync, err)
			}
			latencies[ti] = append(latencies[ti], lat...)
			results[ti].pool(res, latencies[ti])
			b.progress("round %d sync %-7s %8.0f req/s  p50 %6.2f ms  p99 %7.2f ms  failed %d",
				r+1, t.sync, res.PerSecond, percentile(lat, 0.5), percentile(lat, 0.99), res.Failed)
		}
	}
	f := &b.res.Fsync
	f.Workers = fsyncLevel.inFlight()
	f.Default, f.Always = results[0], results[1]
	f.Ratio = ratio(f.Always.PerSecond, f.Default.PerSecond)
	b.progress("%s", f.summary())
	var errs []error
	for _, c := range children {
		errs = append(errs, c.stop())
	}
	return errors.Join(errs...)
}
