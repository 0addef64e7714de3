package main

import (
	"context"
	"fmt"
	"time"

	"kohaku/pkg/sora"
	"kohaku/pkg/stream"
	"kohaku/testsupport/fixtures"
	"kohaku/testsupport/proc"
)

// The receiver phase puts the receiver next to the publish baseline (baseline.go) on every
// combination of body, feed and level, with the same load generator (loadgen.go), the
// same concurrency and bodies of the same size, each request's distinct: so every request
// of both takes the path that stores. The bodies are the Chromium fixture and a
// multistream report of multistreamStreams received streams built from it; the feeds are
// Sora's stats exporter (connection.user-agent on /collector over h2c, at each level) and
// its stats webhook (connection.rtc on /stats-webhook over HTTP/1.1, with as many
// requests in flight as a level has, each on its own connection: levels with the same
// number give one run). Baseline and receiver run one after the other for each
// combination, and rounds go over all of them, so that a machine that gets slower or
// faster during the run affects both alike. The stream is purged between runs, so that
// each starts on an empty stream.
//
// One extra line repeats one body, as a load generator with a fixed body would: JetStream
// stores it once and answers every later publish as a duplicate, which writes nothing.

// feed is one of the ways Sora sends stats.
type feed struct {
	Name   string `json:"name"`
	path   string
	header string
	typ    string
	http1  bool
	// fixture returns the feed's Chromium fixture.
	fixture func() ([]byte, error)
}

var (
	exporterFeed = feed{Name: "exporter h2c", path: "/collector", header: sora.HeaderExporterType, typ: sora.TypeUserAgent,
		fixture: fixtureBody}
	webhookFeed = feed{Name: "webhook HTTP/1.1", path: "/stats-webhook", header: sora.HeaderWebhookType, typ: sora.TypeConnectionRTC,
		http1: true, fixture: webhookBody}
)

// receiverCase is one combination of the receiver phase and what it measured.
type receiverCase struct {
	Body     string     `json:"body"` // chromium or multistream
	Bytes    int        `json:"body_bytes"`
	Feed     string     `json:"feed"`
	Level    level      `json:"level"` // over HTTP/1.1, Connections connections with one request each
	Publish  loadResult `json:"publish"`
	Receiver loadResult `json:"receiver"`
	Ratio    float64    `json:"ratio"` // receiver / publish, requests per second

	path string // the feed's
	load load   // without url
}

// name is the case's name in the table and the targets.
func (c *receiverCase) name() string {
	return fmt.Sprintf("%s %s %s", c.Body, c.Feed, c.Level)
}

// receiverCases returns the combinations of body, feed and level, small bodies first.
func (b *bench) receiverCases() ([]*receiverCase, error) {
	var out []*receiverCase
	for _, size := range []string{"chromium", "multistream"} {
		for _, f := range []feed{exporterFeed, webhookFeed} {
			data, err := f.fixture()
			if err != nil {
				return nil, err
			}
			if size == "multistream" {
				if data, err = multistream(data, multistreamStreams); err != nil {
					return nil, err
				}
			}
			body, err := newStampedBody(data)
			if err != nil {
				return nil, fmt.Errorf("%s %s body: %w", size, f.Name, err)
			}
			seen := map[level]bool{}
			for _, l := range b.o.levels {
				if f.http1 {
					l = level{l.inFlight(), 1}
				}
				if seen[l] {
					continue
				}
				seen[l] = true
				out = append(out, &receiverCase{Body: size, Bytes: len(data), Feed: f.Name, Level: l, path: f.path,
					load: load{header: f.header, typ: f.typ, http1: f.http1, level: l, body: body, stamp: b.stamp}})
			}
		}
	}
	return out, nil
}

// receiverPhase measures the receiver and the publish baseline on every case.
func (b *bench) receiverPhase(ctx context.Context) error {
	cases, err := b.receiverCases()
	if err != nil {
		return err
	}
	// The extra line: the first case's body, the same every time.
	dup := *cases[0]
	dup.Body, dup.load.stamp = "chromium repeated", nil
	all := append(cases, &dup)

	addr, err := proc.PickAddr()
	if err != nil {
		return err
	}
	bp, err := b.start("baseline-publish", b.self, []string{"baseline-publish", "-nats", b.natsURL, "-listen", addr})
	if err != nil {
		return err
	}
	if err := bp.waitHTTP("http://"+addr+"/.ok", 30*time.Second); err != nil {
		return err
	}
	rp, raddr, err := b.startReceiver("kohaku-receiver", b.natsURL)
	if err != nil {
		return err
	}
	targets := []struct {
		name string
		p    *child
		host string
	}{{"publish", bp, "http://" + addr}, {"receiver", rp, "http://" + raddr}}

	s, err := b.js.Stream(ctx, stream.Name)
	if err != nil {
		return fmt.Errorf("stream: %w", err)
	}
	latencies := map[*loadResult][]float64{}
	round := b.o.duration / time.Duration(b.o.rounds)
	for r := range b.o.rounds {
		for _, c := range all {
			for ti, t := range targets {
				// Each run starts on an empty stream, with the last run's work settled.
				if err := s.Purge(ctx); err != nil {
					return fmt.Errorf("purge stream: %w", err)
				}
				if err := sleepCtx(ctx, 500*time.Millisecond); err != nil {
					return err
				}
				l := c.load
				l.url = t.host + c.path
				t.p.resetPeak()
				cpu0 := t.p.cpu()
				res, lat, err := l.run(ctx, b.o.warmup, round)
				if err != nil {
					return fmt.Errorf("%s %s: %w", t.name, c.name(), err)
				}
				// The server's CPU time over the warm-up and the measurement, its share
				// by time, per request of the measurement.
				res.CPUSeconds = (t.p.cpu() - cpu0).Seconds() * res.Seconds / (res.Seconds + b.o.warmup.Seconds())
				if res.PeakRSSMiB, err = t.p.peakRSS(); err != nil {
					return err
				}
				dst := &c.Publish
				if ti == 1 {
					dst = &c.Receiver
				}
				latencies[dst] = append(latencies[dst], lat...)
				dst.pool(res, latencies[dst])
				b.progress("round %d %-8s %-36s %7.0f req/s  p50 %6.2f ms  p99 %7.2f ms  failed %d  rss %.0f MiB  cpu %.0f µs/req",
					r+1, t.name, c.name(), res.PerSecond, percentile(lat, 0.5), percentile(lat, 0.99), res.Failed, res.PeakRSSMiB,
					1e6*res.CPUSeconds/float64(res.Requests+res.Failed))
			}
		}
	}
	for _, c := range all {
		c.Ratio = ratio(c.Receiver.PerSecond, c.Publish.PerSecond)
		b.progress("%-36s receiver %7.0f req/s, publish baseline %7.0f req/s: %.2f", c.name(), c.Receiver.PerSecond, c.Publish.PerSecond, c.Ratio)
	}
	for _, c := range cases {
		b.res.Receiver = append(b.res.Receiver, *c)
		b.res.Memory = append(b.res.Memory, memory{Process: "kohaku-receiver", Phase: "receiver " + c.name(), PeakMiB: c.Receiver.PeakRSSMiB})
	}
	b.res.Duplicates = dup
	// The baseline is done; the receiver serves the end to end phase.
	if err := bp.stop(); err != nil {
		return err
	}
	if err := s.Purge(ctx); err != nil {
		return fmt.Errorf("purge stream: %w", err)
	}
	b.receiverProc, b.receiverURL = rp, "http://"+raddr+exporterFeed.path
	return nil
}

// startReceiver starts kohaku-receiver, its log named name, on free loopback ports with the
// NATS server at natsURL and waits until it is ready. Its profiles are on (KOHAKU_PPROF),
// so that a run can be profiled from outside: the progress log names its admin address.
func (b *bench) startReceiver(name, natsURL string) (*child, string, error) {
	addr, err := proc.PickAddr()
	if err != nil {
		return nil, "", err
	}
	admin, err := proc.PickAddr()
	if err != nil {
		return nil, "", err
	}
	p, err := b.start(name, b.receiver, nil,
		"KOHAKU_LISTEN="+addr, "KOHAKU_ADMIN_LISTEN="+admin, "KOHAKU_NATS_URL="+natsURL,
		"KOHAKU_RECEIVER_ID=kohaku-bench", "KOHAKU_LOG_FORMAT=json", "KOHAKU_LOG_LEVEL=warn", "KOHAKU_PPROF=true")
	if err != nil {
		return nil, "", err
	}
	if err := p.waitHTTP("http://"+admin+"/readyz", 30*time.Second); err != nil {
		return nil, "", err
	}
	b.progress("%s: profiles at http://%s/debug/pprof/", name, admin)
	return p, addr, nil
}

// webhookBody returns the first stats webhook fixture: the capture of fixtureBody as a
// connection.rtc report.
func webhookBody() ([]byte, error) {
	all, err := fixtures.Webhooks()
	if err != nil {
		return nil, err
	}
	if len(all) == 0 {
		return nil, fmt.Errorf("no %s fixture", sora.TypeConnectionRTC)
	}
	return all[0].Body, nil
}

// fixtureBody returns the first Chromium connection.user-agent fixture.
func fixtureBody() ([]byte, error) {
	all, err := fixtures.ByType(sora.TypeUserAgent)
	if err != nil {
		return nil, err
	}
	if len(all) == 0 {
		return nil, fmt.Errorf("no %s fixture", sora.TypeUserAgent)
	}
	return all[0].Body, nil
}

func ratio(v, base float64) float64 {
	if base == 0 {
		return 0
	}
	return v / base
}
