package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"kohaku/pkg/sora"
)

// level is one load level of the receiver phase: h2load clients (connections), each with
// up to streams requests in flight.
type level struct {
	Connections int `json:"connections"`
	Streams     int `json:"streams"`
}

func (l level) String() string { return fmt.Sprintf("%dx%d", l.Connections, l.Streams) }

// parseLevels reads "8x32,64x16".
func parseLevels(s string) ([]level, error) {
	var out []level
	for part := range strings.SplitSeq(s, ",") {
		c, m, ok := strings.Cut(strings.TrimSpace(part), "x")
		cn, err1 := strconv.Atoi(c)
		mn, err2 := strconv.Atoi(m)
		if !ok || err1 != nil || err2 != nil || cn < 1 || mn < 1 {
			return nil, fmt.Errorf("level %q: want CONNECTIONSxSTREAMS, e.g. 8x32", part)
		}
		out = append(out, level{cn, mn})
	}
	if len(out) == 0 {
		return nil, errors.New("no load level")
	}
	return out, nil
}

// loadResult is what one h2load run measured.
type loadResult struct {
	Requests  int64   `json:"requests"`  // answered with 2xx during the measurement
	Failed    int64   `json:"failed"`    // not answered, or answered with another status
	Seconds   float64 `json:"seconds"`   // length of the measurement
	PerSecond float64 `json:"req_per_s"` // 2xx answers per second
	P50ms     float64 `json:"p50_ms"`
	P99ms     float64 `json:"p99_ms"`
	MaxMs     float64 `json:"max_ms"`
	// PeakRSSMiB is the server's peak resident set size during the run.
	PeakRSSMiB float64 `json:"peak_rss_mib"`
	// CPUSeconds is the server process's CPU time during the measurement (its share
	// of the run's, by time); CPUPerRequestUs that per request.
	CPUSeconds      float64 `json:"cpu_s"`
	CPUPerRequestUs float64 `json:"cpu_us_per_request"`
}

// h2loadInstall is said when h2load is missing.
const h2loadInstall = "h2load not found: install it with `apt-get install -y nghttp2-client` (Debian, Ubuntu) or your system's nghttp2 package"

// h2loadVersion returns h2load's version line, or an error saying how to install it.
func h2loadVersion() (string, error) {
	if _, err := exec.LookPath("h2load"); err != nil {
		return "", errors.New(h2loadInstall)
	}
	out, err := exec.Command("h2load", "--version").Output()
	if err != nil {
		return "", fmt.Errorf("h2load --version: %w", err)
	}
	return strings.TrimSpace(string(out)), nil
}

// h2load runs h2load against url with the body in bodyFile, for warmup and then duration,
// and returns what it measured in the measurement period: over h2c (prior knowledge, as
// Sora's stats exporter does for http://), or with webhook over HTTP/1.1 as Sora's stats
// webhook does (see h2loadArgs). Latencies come from its per-request log: h2load itself
// prints only mean and deviation.
func h2load(ctx context.Context, dir, url, bodyFile string, webhook bool, l level, warmup, duration time.Duration) (loadResult, []float64, error) {
	logFile := filepath.Join(dir, fmt.Sprintf("h2load-%d.log", time.Now().UnixNano()))
	defer os.Remove(logFile)
	args := h2loadArgs(url, bodyFile, logFile, webhook, l, warmup, duration)
	cctx, cancel := context.WithTimeout(ctx, warmup+duration+time.Minute)
	defer cancel()
	out, err := exec.CommandContext(cctx, "h2load", args...).CombinedOutput()
	if ctx.Err() != nil {
		return loadResult{}, nil, errStopped
	}
	if err != nil {
		return loadResult{}, nil, fmt.Errorf("h2load %s: %w\n%s", strings.Join(args, " "), err, out)
	}
	res, err := parseH2load(string(out))
	if err != nil {
		return loadResult{}, nil, fmt.Errorf("h2load output: %w\n%s", err, out)
	}
	lat, err := readLatencies(logFile)
	if err != nil {
		return loadResult{}, nil, err
	}
	return res, lat, nil
}

// h2loadArgs returns h2load's arguments. The exporter's report goes over h2c, l.Streams
// requests in flight on each of l.Connections connections. The webhook goes over HTTP/1.1
// with as many requests in flight, each on a connection of its own, as HTTP/1.1 clients
// send them; h2load's -m over HTTP/1.1 would pipeline them instead.
func h2loadArgs(url, bodyFile, logFile string, webhook bool, l level, warmup, duration time.Duration) []string {
	conns, streams, header := l.Connections, l.Streams, sora.HeaderExporterType+": "+sora.TypeUserAgent
	var proto []string
	if webhook {
		conns, streams, header = l.Connections*l.Streams, 1, sora.HeaderWebhookType+": "+sora.TypeConnectionRTC
		proto = []string{"--h1"}
	}
	return append(proto,
		"-c", strconv.Itoa(conns), "-m", strconv.Itoa(streams), "-t", "1",
		"-D", strconv.FormatInt(duration.Milliseconds(), 10)+"ms",
		"--warm-up-time", strconv.FormatInt(warmup.Milliseconds(), 10)+"ms",
		"-d", bodyFile,
		"-H", header,
		"-H", "content-type: application/json",
		"--log-file", logFile,
		url,
	)
}

// pool adds the result of another round of the same target and level to r: rates over the
// rounds' total time, percentiles over all their requests (lat holds every latency so far).
func (r *loadResult) pool(o loadResult, lat []float64) {
	r.Requests += o.Requests
	r.Failed += o.Failed
	r.Seconds += o.Seconds
	r.PerSecond = 0
	if r.Seconds > 0 {
		r.PerSecond = float64(r.Requests) / r.Seconds
	}
	r.P50ms, r.P99ms, r.MaxMs = percentile(lat, 0.50), percentile(lat, 0.99), percentile(lat, 1)
	r.PeakRSSMiB = max(r.PeakRSSMiB, o.PeakRSSMiB)
	r.CPUSeconds += o.CPUSeconds
	if n := r.Requests + r.Failed; n > 0 {
		r.CPUPerRequestUs = 1e6 * r.CPUSeconds / float64(n)
	}
}

var (
	reFinished = regexp.MustCompile(`finished in [0-9.]+(?:ms|s), ([0-9.]+) req/s`)
	reRequests = regexp.MustCompile(`requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored, (\d+) timeout`)
	reStatus   = regexp.MustCompile(`status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx`)
)

// parseH2load reads the summary that h2load prints:
//
//	finished in 12.00s, 12345.60 req/s, 150.23MB/s
//	requests: 123456 total, 123456 started, 123456 done, 123456 succeeded, 0 failed, 0 errored, 0 timeout
//	status codes: 123456 2xx, 0 3xx, 0 4xx, 0 5xx
//
// "finished in" includes the warm-up; the rate and the counts are of the measurement
// period only. h2load counts a 4xx or 5xx answer as succeeded; only 2xx count here.
func parseH2load(out string) (loadResult, error) {
	f := reFinished.FindStringSubmatch(out)
	r := reRequests.FindStringSubmatch(out)
	s := reStatus.FindStringSubmatch(out)
	if f == nil || r == nil || s == nil {
		return loadResult{}, errors.New("no summary (finished, requests, status codes) found")
	}
	rate, _ := strconv.ParseFloat(f[1], 64)
	n := func(v string) int64 { x, _ := strconv.ParseInt(v, 10, 64); return x }
	total, ok2xx := n(r[1]), n(s[1])
	res := loadResult{Requests: ok2xx, Failed: total - ok2xx}
	if rate > 0 && total > 0 {
		res.Seconds = float64(total) / rate
		res.PerSecond = float64(ok2xx) / res.Seconds
	}
	if ok2xx == 0 {
		return res, errors.New("no request was answered with 2xx")
	}
	return res, nil
}

// readLatencies reads h2load's --log-file: one line per request, "start (µs since the
// epoch) TAB status TAB duration (µs)". It returns the durations of 2xx answers in ms.
func readLatencies(path string) ([]float64, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("h2load log: %w", err)
	}
	defer f.Close()
	var out []float64
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fs := strings.Fields(sc.Text())
		if len(fs) != 3 || len(fs[1]) != 3 || fs[1][0] != '2' {
			continue
		}
		us, err := strconv.ParseFloat(fs[2], 64)
		if err != nil {
			continue
		}
		out = append(out, us/1000)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("h2load log: %w", err)
	}
	if len(out) == 0 {
		return nil, errors.New("h2load log: no 2xx request logged")
	}
	return out, nil
}

// percentile returns the q-quantile of v by the nearest-rank method (q=1 is the maximum);
// it sorts v.
func percentile(v []float64, q float64) float64 {
	if len(v) == 0 {
		return 0
	}
	slices.Sort(v)
	k := int(q*float64(len(v)) + 0.999999999)
	return v[min(max(k, 1), len(v))-1]
}
