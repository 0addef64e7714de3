// Command sora-sim simulates Sora's stats so that Kohaku's dashboards show live-looking
// data without a Sora. It sends one of Sora's two feeds for any number of simulated
// connections:
//
//   - --feed webhook (the default): the stats webhook of Sora 2025.1 and later, one
//     connection.rtc report per connection and interval, POSTed over HTTP/1.1 (over TLS for
//     an https:// URL) with the sora-stats-webhook-type header, as Sora 2025.2 sends it
//     (group_id and bundle_id, no multistream), to http://127.0.0.1:5890/stats-webhook
//     unless --url says otherwise. The webhook has no node report.
//   - --feed exporter: the stats exporter of older Sora, connection.user-agent reports and
//     the node's node.erlang-vm report, over HTTP/2 (h2c for an http:// URL, h2 over TLS for
//     https://), to http://127.0.0.1:5890/collector unless --url says otherwise.
//
// --basic-auth adds HTTP Basic authentication on either feed, as a Kohaku receiver with
// KOHAKU_BASIC_AUTH_USER requires; --ca, --cert and --key test TLS and mTLS.
//
// Every connection starts from a real Chromium capture (the project's fixtures) and evolves
// like a call: counters grow at a bitrate of its own, gauges wander, packets are sometimes
// lost. --impair injects trouble into the first --impair-connections connections (all by
// default) on a plan of time windows, and --steady (implied by --impair) keeps the network
// of every connection free of any other trouble, so that an analysis of the stored stats
// can be checked against the plan:
//
//	sora-sim --connections 6 --impair-connections 3 --impair 'loss=10%@60s-90s,freeze@120s,rtt=600ms@150s-170s,relay,cpu@200s-230s'
//
// A progress line goes to stderr every second. The exit status is 1 when any request
// did not get a 204, 2 for bad flags.
//
//	sora-sim --connections 200 --interval 5s --duration 1m
//	sora-sim --feed exporter --url http://127.0.0.1:5890/collector --connections 200
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"
	"time"

	"kohaku/tools/internal/sim"
)

// config is what the flags set.
type config struct {
	feed        sim.Feed
	url         string
	connections int
	channels    int
	interval    time.Duration
	duration    time.Duration
	concurrency int
	timeout     time.Duration
	seed        uint64
	erlangVM    bool
	client      sim.ClientOptions
	impair      sim.Impairments
	impaired    int  // how many connections, the first ones, follow impair; 0 for all
	steady      bool // a good network without random trouble
}

func parseFlags(args []string, stderr io.Writer) (config, error) {
	var c config
	var feed, basicAuth, impair string
	fs := flag.NewFlagSet("sora-sim", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&feed, "feed", string(sim.FeedWebhook), "what Sora sends: webhook (the stats webhook of Sora 2025.1 and later: connection.rtc over HTTP/1.1) or exporter (the stats exporter of older Sora: connection.user-agent and node.erlang-vm over HTTP/2)")
	fs.StringVar(&c.url, "url", "", "where to send: for webhook http:// (HTTP/1.1) or https:// (HTTP/1.1 over TLS), default "+
		sim.FeedWebhook.DefaultURL()+"; for exporter http:// (h2c with prior knowledge) or https:// (h2 over TLS), default "+sim.FeedExporter.DefaultURL())
	fs.IntVar(&c.connections, "connections", 100, "simulated client connections, each reporting once per interval")
	fs.IntVar(&c.channels, "channels", 4, "channels the connections are spread over (one session each)")
	fs.DurationVar(&c.interval, "interval", 5*time.Second, "time between two reports of one connection; reports are spread over it")
	fs.DurationVar(&c.duration, "duration", 0, "how long to run; 0 runs until interrupted")
	fs.IntVar(&c.concurrency, "concurrency", 64, "most requests in flight at once")
	fs.DurationVar(&c.timeout, "timeout", 10*time.Second, "limit of one request, from dial to the end of the answer")
	fs.Uint64Var(&c.seed, "seed", 0, "random seed; the same seed gives the same connections (0: a new seed each run)")
	fs.BoolVar(&c.erlangVM, "erlang-vm", true, "exporter feed only: also send the node's node.erlang-vm report once per interval (the stats webhook has no such report: --feed webhook never sends it)")
	fs.StringVar(&basicAuth, "basic-auth", "", "user:password for HTTP Basic authentication on either feed (Sora's webhook_basic_authn_* settings; a receiver with KOHAKU_BASIC_AUTH_USER requires it)")
	fs.StringVar(&c.client.CAFile, "ca", "", "PEM file of the CA that signs the collector's certificate (https only; default: the system's)")
	fs.StringVar(&c.client.CertFile, "cert", "", "PEM client certificate for mutual TLS (https only; with --key)")
	fs.StringVar(&c.client.KeyFile, "key", "", "PEM private key of --cert")
	fs.BoolVar(&c.client.Insecure, "insecure", false, "do not verify the collector's certificate (https only; for tests)")
	fs.StringVar(&impair, "impair", "", "plan of trouble to inject, as 'loss=10%@60s-90s,freeze@120s,rtt=600ms@150s-170s,relay,cpu@200s-230s' (see below)")
	fs.IntVar(&c.impaired, "impair-connections", 0, "how many connections follow --impair: the first N (sora-sim-client-00001 to N), always sendrecv; 0: all")
	fs.BoolVar(&c.steady, "steady", false, "give every connection a good, steady network (no random loss, congestion or frame size changes, RTT under 50 ms, jitter under 10 ms); on by default with --impair")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), `Usage: sora-sim [flags]

Simulates Sora's stats: POSTs a report of each of --connections simulated WebRTC
connections every --interval to --url, with counters that grow like a real call. The
default --feed webhook sends connection.rtc reports over HTTP/1.1 to /stats-webhook, as
Sora 2025.1 and later do; --feed exporter sends connection.user-agent reports and the
node's node.erlang-vm report over HTTP/2 to /collector, as older Sora does. Prints a
progress line every second to stderr; exits 1 if any request did not get a 204.

Flags:
`)
		fs.PrintDefaults()
		fmt.Fprint(fs.Output(), impairUsage)
	}
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected arguments: %s", strings.Join(fs.Args(), " "))
	}
	var err error
	if c.feed, err = sim.ParseFeed(feed); err != nil {
		return c, fmt.Errorf("--feed: %w", err)
	}
	if c.url == "" {
		c.url = c.feed.DefaultURL()
	}
	if c.feed == sim.FeedWebhook {
		set := false
		fs.Visit(func(f *flag.Flag) { set = set || f.Name == "erlang-vm" })
		if set && c.erlangVM {
			return c, errors.New("--erlang-vm: the stats webhook has no node.erlang-vm report; use --feed exporter to send it")
		}
		c.erlangVM = false
	}
	if basicAuth != "" {
		if c.client.BasicAuthUser, c.client.BasicAuthPassword, err = sim.ParseBasicAuth(basicAuth); err != nil {
			return c, fmt.Errorf("--basic-auth: %w", err)
		}
	}
	if c.impair, err = sim.ParseImpairments(impair); err != nil {
		return c, fmt.Errorf("--impair: %w", err)
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if len(c.impair) > 0 && !set["steady"] {
		c.steady = true
	}
	switch {
	case set["impair-connections"] && len(c.impair) == 0:
		return c, errors.New("--impair-connections: no --impair plan to follow")
	case c.impaired < 0 || c.impaired > c.connections:
		return c, fmt.Errorf("--impair-connections must be between 0 (all) and --connections %d, got %d", c.connections, c.impaired)
	}
	switch {
	case c.connections < 1:
		return c, fmt.Errorf("--connections must be at least 1, got %d", c.connections)
	case c.channels < 1:
		return c, fmt.Errorf("--channels must be at least 1, got %d", c.channels)
	case c.interval <= 0:
		return c, fmt.Errorf("--interval must be positive, got %s", c.interval)
	case c.duration < 0:
		return c, fmt.Errorf("--duration must not be negative, got %s", c.duration)
	case c.concurrency < 1:
		return c, fmt.Errorf("--concurrency must be at least 1, got %d", c.concurrency)
	case c.timeout < 0:
		return c, fmt.Errorf("--timeout must not be negative, got %s", c.timeout)
	}
	c.client.Timeout = c.timeout
	c.client.HTTP1 = c.feed == sim.FeedWebhook // Sora's webhooks are HTTP/1.1
	return c, nil
}

func main() {
	cfg, err := parseFlags(os.Args[1:], os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(0)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "sora-sim:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	totals, err := run(ctx, cfg, os.Stderr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "sora-sim:", err)
		os.Exit(2)
	}
	if totals.Failed() > 0 {
		os.Exit(1)
	}
}

// run sends reports until the duration ends or ctx is done, printing progress to out, and
// returns the final counts.
func run(ctx context.Context, cfg config, out io.Writer) (sim.Totals, error) {
	tmpl, err := sim.FixtureTemplate()
	if err != nil {
		return sim.Totals{}, err
	}
	seed := cfg.seed
	if seed == 0 {
		seed = uint64(time.Now().UnixNano())
	}
	conns, err := sim.NewConnections(tmpl, sim.Options{Connections: cfg.connections, Channels: cfg.channels, Seed: seed,
		Steady: cfg.steady, Impair: cfg.impair, Impaired: cfg.impaired}, time.Now())
	if err != nil {
		return sim.Totals{}, err
	}
	var node *sim.Node
	if cfg.erlangVM {
		node = sim.NewNode(tmpl, seed)
	}
	client, err := sim.NewClient(cfg.url, cfg.client)
	if err != nil {
		return sim.Totals{}, err
	}
	if cfg.duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, cfg.duration)
		defer cancel()
	}
	what := "stats webhook: connection.rtc over HTTP/1.1"
	if cfg.feed == sim.FeedExporter {
		what = "stats exporter: connection.user-agent over HTTP/2"
		if node != nil {
			what += ", and node.erlang-vm"
		}
	}
	fmt.Fprintf(out, "sora-sim: %d connections in %d channels, a report each every %s, to %s (%s; seed %d)\n",
		cfg.connections, min(cfg.channels, cfg.connections), cfg.interval, cfg.url, what, seed)
	if len(cfg.impair) > 0 {
		n := cfg.impaired
		if n == 0 {
			n = cfg.connections
		}
		fmt.Fprintf(out, "sora-sim: impairing sora-sim-client-00001 to %s: %s (steady network: %t)\n",
			conns[n-1].ClientID, cfg.impair, cfg.steady)
	}

	s := sim.NewSender(client, cfg.feed, cfg.url, cfg.concurrency)
	done := make(chan error, 1)
	start := time.Now()
	go func() { done <- s.Run(ctx, conns, node, cfg.interval) }()
	ticker := time.NewTicker(time.Second)
	defer ticker.Stop()
	var prev sim.Totals
	prevAt := start
	for {
		select {
		case err := <-done:
			t := s.Totals()
			fmt.Fprintln(out, progress(t, prev, time.Since(start), time.Since(prevAt)))
			fmt.Fprintf(out, "sora-sim: done: %d sent, %d answered 204, %d failed\n", t.Sent, t.NoContent, t.Failed())
			return t, err
		case now := <-ticker.C:
			t := s.Totals()
			fmt.Fprintln(out, progress(t, prev, now.Sub(start), now.Sub(prevAt)))
			prev, prevAt = t, now
		}
	}
}

// progress formats one progress line: the counts so far and the rate of answers since the
// previous line.
func progress(t, prev sim.Totals, elapsed, since time.Duration) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s  sent %d  204 %d  other %d", elapsed.Truncate(time.Second), t.Sent, t.NoContent, t.Other)
	if len(t.Statuses) > 0 {
		codes := make([]int, 0, len(t.Statuses))
		for code := range t.Statuses {
			codes = append(codes, code)
		}
		sort.Ints(codes)
		parts := make([]string, len(codes))
		for i, code := range codes {
			parts[i] = fmt.Sprintf("%d×%d", code, t.Statuses[code])
		}
		fmt.Fprintf(&b, " (%s)", strings.Join(parts, " "))
	}
	rate := 0.0
	if since > 0 {
		rate = float64(t.Done()-prev.Done()) / since.Seconds()
	}
	fmt.Fprintf(&b, "  errors %d  %.1f req/s", t.Errors, rate)
	if t.Failed() > prev.Failed() && t.LastProblem != "" {
		fmt.Fprintf(&b, "  last: %.160s", t.LastProblem)
	}
	return b.String()
}

// impairUsage explains the --impair plan after the flags.
const impairUsage = `
--impair plan: impairments separated by commas, each kind[=value][@window]:
  loss=P%         P% of the packets sent to us lost (inbound-rtp packetsLost, nackCount);
                  P = lost / (lost + received), 0 < P < 100
  remoteloss=P%   P% of our packets lost as the remote side reports it (remote-inbound-rtp
                  packetsLost = P% of packetsSent, fractionLost = P/100, outbound nackCount)
  freeze          received video frozen: framesDecoded/framesReceived stop, framesPerSecond 0,
                  totalFreezesDuration grows, freezeCount +1, pliCount +1 and +1 a second
  rtt=D           round-trip time D (candidate-pair currentRoundTripTime, remote roundTripTime)
  jitter=D        inbound-rtp jitter D
  conceal=P%      concealedSamples grow by P% of totalSamplesReceived, concealmentEvents +1
  cpu, bandwidth  outbound video qualityLimitationReason and qualityLimitationDurations
  stop            media stopped: inbound-rtp and outbound-rtp counters stop, active stays true
  relay, tcp      local candidate of the candidate pairs of candidateType relay, protocol tcp
  ice=S, dtls=S   transport iceState (new, checking, disconnected, failed, closed) or
                  dtlsState (new, connecting, closed, failed)
  gap             no reports sent
Windows: @T1-T2 is [T1, T2), @T1- runs to the end, none is the whole run (not for gap);
freeze@T is a one-second freeze [T, T+1s). T is a Go duration (90s, 1m30s) from the
connection's first report. Counters change by the part of each reporting step inside the
window; gauges and states hold in the reports at T1 <= t < T2.
`
