package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"kohaku/pkg/sora"
	"kohaku/testsupport/fixtures"
	"kohaku/testsupport/proc"
)

// The receiver phase drives the bare baseline, the publish baseline and the receiver with
// h2load at each level, in that order per level, so that a machine that gets slower or
// faster during the run affects the three alike. Then, at the same level, it posts the
// stats webhook's connection.rtc fixture to the receiver's /stats-webhook over HTTP/1.1,
// as Sora 2025.1 and later do, with as many requests in flight: its rate is printed next
// to the exporter's over h2c.
//
// h2load sends the same body with every request. The receiver's Nats-Msg-Id is a hash of
// the body (DESIGN.md section 3), so JetStream stores it once and answers every later
// publish as a duplicate within its 2-minute window; the publish baseline sets the same id,
// so both go through the same server path and their ratio is fair. Their absolute rate is
// that of JetStream's duplicate path, which skips the write to the stream's file; the end
// to end phase sends distinct bodies and stores every one.

// receiverPhase measures the three targets at every level.
func (b *bench) receiverPhase(ctx context.Context) error {
	body, err := fixtureBody()
	if err != nil {
		return err
	}
	bodyFile := filepath.Join(b.dir, "body.json")
	if err := os.WriteFile(bodyFile, body, 0o644); err != nil {
		return fmt.Errorf("write body: %w", err)
	}
	b.res.Settings.BodyBytes = len(body)
	hook, err := webhookBody()
	if err != nil {
		return err
	}
	hookFile := filepath.Join(b.dir, "webhook.json")
	if err := os.WriteFile(hookFile, hook, 0o644); err != nil {
		return fmt.Errorf("write webhook body: %w", err)
	}
	b.res.Settings.WebhookBodyBytes = len(hook)

	type target struct {
		name     string
		p        *child
		url      string
		bodyFile string
		webhook  bool // HTTP/1.1 with the webhook's header instead of h2c
	}
	var targets []target
	for _, t := range []struct {
		name string
		args []string
	}{
		{"bare", []string{"baseline-bare"}},
		{"publish", []string{"baseline-publish", "-nats", b.natsURL}},
	} {
		addr, err := proc.PickAddr()
		if err != nil {
			return err
		}
		p, err := b.start("baseline-"+t.name, b.self, append(t.args, "-listen", addr))
		if err != nil {
			return err
		}
		if err := p.waitHTTP("http://"+addr+"/.ok", 30*time.Second); err != nil {
			return err
		}
		targets = append(targets, target{t.name, p, "http://" + addr + "/collector", bodyFile, false})
	}
	rp, addr, err := b.startReceiver("kohaku-receiver", b.natsURL)
	if err != nil {
		return err
	}
	targets = append(targets, target{"receiver", rp, "http://" + addr + "/collector", bodyFile, false},
		target{"webhook", rp, "http://" + addr + "/stats-webhook", hookFile, true})

	// Rounds interleave the targets and levels, so that a burst of load from elsewhere on
	// the machine hits all of them rather than one.
	type key struct{ level, target int }
	results := map[key]*loadResult{}
	latencies := map[key][]float64{}
	round := b.o.duration / time.Duration(b.o.rounds)
	for r := range b.o.rounds {
		for li, l := range b.o.levels {
			for ti, t := range targets {
				if err := sleepCtx(ctx, time.Second); err != nil { // let the last run's work settle
					return err
				}
				t.p.resetPeak()
				cpu0 := t.p.cpu()
				res, lat, err := h2load(ctx, b.dir, t.url, t.bodyFile, t.webhook, l, b.o.warmup, round)
				if err != nil {
					return fmt.Errorf("%s at %s: %w", t.name, l, err)
				}
				// The server's CPU time over the warm-up and the measurement, per request
				// of both at the measured rate.
				res.CPUSeconds = (t.p.cpu() - cpu0).Seconds()
				res.CPUSeconds *= res.Seconds / (res.Seconds + b.o.warmup.Seconds())
				if res.PeakRSSMiB, err = t.p.peakRSS(); err != nil {
					return err
				}
				k := key{li, ti}
				if results[k] == nil {
					results[k] = &loadResult{}
				}
				latencies[k] = append(latencies[k], lat...)
				results[k].pool(res, latencies[k])
				b.progress("round %d %-8s %-6s %8.0f req/s  p50 %6.2f ms  p99 %7.2f ms  failed %d  rss %.0f MiB  cpu %.0f µs/req",
					r+1, t.name, l, res.PerSecond, percentile(lat, 0.5), percentile(lat, 0.99), res.Failed, res.PeakRSSMiB,
					1e6*res.CPUSeconds/float64(res.Requests+res.Failed))
			}
		}
	}
	for li, l := range b.o.levels {
		lr := receiverLevel{Level: l, Bare: *results[key{li, 0}], Publish: *results[key{li, 1}], Receiver: *results[key{li, 2}],
			Webhook: *results[key{li, 3}]}
		lr.Ratio = ratio(lr.Receiver.PerSecond, lr.Publish.PerSecond)
		lr.WebhookRatio = ratio(lr.Webhook.PerSecond, lr.Receiver.PerSecond)
		b.res.Receiver = append(b.res.Receiver, lr)
		b.res.Memory = append(b.res.Memory,
			memory{Process: "kohaku-receiver", Phase: "receiver " + l.String(), PeakMiB: lr.Receiver.PeakRSSMiB},
			memory{Process: "kohaku-receiver", Phase: "webhook " + l.String(), PeakMiB: lr.Webhook.PeakRSSMiB})
		b.progress("%-6s receiver %.0f req/s, publish baseline %.0f req/s: %.2f; bare %.0f req/s; webhook over HTTP/1.1 %.0f req/s",
			l, lr.Receiver.PerSecond, lr.Publish.PerSecond, lr.Ratio, lr.Bare.PerSecond, lr.Webhook.PerSecond)
	}
	// The baselines are done; the receiver serves the end to end phase.
	for _, t := range targets[:2] {
		if err := t.p.stop(); err != nil {
			return err
		}
	}
	b.receiverProc, b.receiverURL = rp, targets[2].url
	return nil
}

// startReceiver starts kohaku-receiver, its log named name, on free loopback ports with the
// NATS server at natsURL and waits until it is ready.
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
		"KOHAKU_RECEIVER_ID=kohaku-bench", "KOHAKU_LOG_FORMAT=json", "KOHAKU_LOG_LEVEL=warn")
	if err != nil {
		return nil, "", err
	}
	if err := p.waitHTTP("http://"+admin+"/readyz", 30*time.Second); err != nil {
		return nil, "", err
	}
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
