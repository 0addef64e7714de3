package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// config is what the flags set.
type config struct {
	chromium string
	out      string
	reports  int
	interval time.Duration
	warmup   time.Duration
	timeout  time.Duration
	verbose  bool
	keepAddr bool
}

func main() {
	cfg, err := parseFlags(os.Args[1:], os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		return
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "capture-stats:", err)
		os.Exit(2)
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, log, cfg); err != nil {
		log.Error("capture failed", "err", err)
		os.Exit(1)
	}
}

const usage = `Usage: capture-stats [flags]

capture-stats makes a loopback WebRTC call inside headless Chromium (two peer connections
in one page, fake camera and microphone, audio and video both ways and a data channel),
calls getStats() on both peer connections every --interval, and writes each report,
wrapped in a Sora "connection.user-agent" message, as one JSON file into --out:
chromium-pc1-1.json, chromium-pc2-1.json, ... Existing files of the same name are replaced.

The stats are kept as Chromium serialized them, except that candidate addresses of this
machine's own network interfaces (anything but loopback) are replaced by documentation
addresses (203.0.113.0/24, 2001:db8::/32) unless --keep-addresses is given.

Run it from the repository root to refresh the fixtures of testsupport/fixtures:

	go run ./tools/cmd/capture-stats

Flags:
`

func parseFlags(args []string, stderr io.Writer) (config, error) {
	var cfg config
	fs := flag.NewFlagSet("capture-stats", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, usage)
		fs.PrintDefaults()
	}
	fs.StringVar(&cfg.chromium, "chromium", "chromium", "Chromium `executable`, a path or a name looked up in PATH")
	fs.StringVar(&cfg.out, "out", filepath.Join("pkg", "fixtures", "data"), "`directory` to write the fixtures into (created if missing)")
	fs.IntVar(&cfg.reports, "reports", 4, "getStats() reports to capture per peer connection")
	fs.DurationVar(&cfg.interval, "interval", 2*time.Second, "time between two reports")
	fs.DurationVar(&cfg.warmup, "warmup", 5*time.Second, "media time after the call connected and before the first report, so that RTCP-based stats exist")
	fs.DurationVar(&cfg.timeout, "timeout", 0, "give up after this long (0: warmup + reports × interval + 1m)")
	fs.BoolVar(&cfg.keepAddr, "keep-addresses", false, "keep this machine's non-loopback candidate addresses instead of replacing them by documentation addresses")
	fs.BoolVar(&cfg.verbose, "v", false, "copy Chromium's output to stderr")
	if err := fs.Parse(args); err != nil {
		return config{}, err
	}
	if fs.NArg() > 0 {
		return config{}, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if cfg.reports < 1 {
		return config{}, fmt.Errorf("--reports must be at least 1, not %d", cfg.reports)
	}
	if cfg.interval < 0 || cfg.warmup < 0 || cfg.timeout < 0 {
		return config{}, errors.New("--interval, --warmup and --timeout must not be negative")
	}
	if cfg.timeout == 0 {
		cfg.timeout = cfg.warmup + time.Duration(cfg.reports)*cfg.interval + time.Minute
	}
	return cfg, nil
}

// run serves the page, lets Chromium call through it, and writes the reports it posts.
// Nothing is written unless every report arrived.
func run(ctx context.Context, log *slog.Logger, cfg config) error {
	chromium, err := exec.LookPath(cfg.chromium)
	if err != nil {
		return fmt.Errorf("find chromium (install Debian's chromium package or pass --chromium): %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.timeout)
	defer cancel()

	// Loopback only: the page and its reports never leave this machine.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("listen for the page: %w", err)
	}
	ps := newPageServer(log, cfg.reports)
	srv := &http.Server{Handler: ps.routes(), ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	defer srv.Close()

	q := url.Values{}
	q.Set("reports", strconv.Itoa(cfg.reports))
	q.Set("interval", strconv.FormatInt(cfg.interval.Milliseconds(), 10))
	q.Set("warmup", strconv.FormatInt(cfg.warmup.Milliseconds(), 10))
	pageURL := "http://" + ln.Addr().String() + "/?" + q.Encode()

	b, err := startBrowser(log, chromium, pageURL, cfg.verbose)
	if err != nil {
		return err
	}
	reports, err := collect(ctx, ps, b, cfg.reports)
	stopCtx, stopCancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer stopCancel()
	b.Stop(stopCtx)
	if err != nil {
		return err
	}
	if !cfg.keepAddr {
		scrub := newAddressScrubber()
		for i := range reports {
			if reports[i].Stats, err = scrub.Scrub(reports[i].Stats); err != nil {
				return fmt.Errorf("%s report %d: %w", reports[i].Peer, reports[i].N, err)
			}
		}
		for from, to := range scrub.replace {
			log.Info("candidate address replaced", "from", from, "to", to)
		}
	}
	return writeFixtures(log, cfg.out, reports)
}

// collect waits until the page posted every report and said it is done.
func collect(ctx context.Context, ps *pageServer, b *browser, want int) ([]report, error) {
	var got []report
	seen := map[string]bool{}
	for {
		select {
		case rep := <-ps.reports:
			if rep.Peer != "pc1" && rep.Peer != "pc2" || rep.N < 1 || rep.N > want {
				return nil, fmt.Errorf("page posted an unexpected report %s #%d", rep.Peer, rep.N)
			}
			key := fmt.Sprintf("%s-%d", rep.Peer, rep.N)
			if seen[key] {
				return nil, fmt.Errorf("page posted report %s twice", key)
			}
			seen[key] = true
			got = append(got, rep)
		case <-ps.done:
			if len(got) != 2*want {
				return nil, fmt.Errorf("page finished after %d of %d reports", len(got), 2*want)
			}
			return got, nil
		case msg := <-ps.failed:
			return nil, fmt.Errorf("page: %s", msg)
		case <-b.Exited():
			return nil, b.Err()
		case <-ctx.Done():
			return nil, fmt.Errorf("waiting for reports (%d of %d arrived): %w; chromium said: %s",
				len(got), 2*want, ctx.Err(), b.stderr.String())
		}
	}
}

// writeFixtures wraps every report in a Sora envelope and writes it as
// chromium-<peer>-<n>.json into dir.
func writeFixtures(log *slog.Logger, dir string, reports []report) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("create %s: %w", dir, err)
	}
	conns, err := newConnections(reports[0].at)
	if err != nil {
		return err
	}
	for _, rep := range reports {
		i := slices.IndexFunc(conns, func(c connection) bool { return c.peer == rep.Peer })
		env, err := wrap(conns[i], rep.Stats, rep.at)
		if err != nil {
			return err
		}
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		// Keep the browser's strings as they were: no \u003c for < and >.
		enc.SetEscapeHTML(false)
		if err := enc.Encode(env); err != nil {
			return fmt.Errorf("encode %s report %d: %w", rep.Peer, rep.N, err)
		}
		name := filepath.Join(dir, fmt.Sprintf("chromium-%s-%d.json", rep.Peer, rep.N))
		if err := os.WriteFile(name, buf.Bytes(), 0o644); err != nil {
			return fmt.Errorf("write fixture: %w", err)
		}
		types, err := statsTypes(rep.Stats)
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		log.Info("fixture written", "file", name, "bytes", buf.Len(), "types", strings.Join(types, ","))
	}
	return nil
}

// statsTypes lists the distinct RTCStats types of a report, sorted, as a quick check that
// media really flowed.
func statsTypes(stats json.RawMessage) ([]string, error) {
	var elems []struct {
		Type string `json:"type"`
	}
	if err := json.Unmarshal(stats, &elems); err != nil {
		return nil, fmt.Errorf("stats is not an array of objects: %w", err)
	}
	var types []string
	for _, e := range elems {
		if !slices.Contains(types, e.Type) {
			types = append(types, e.Type)
		}
	}
	slices.Sort(types)
	return types, nil
}
