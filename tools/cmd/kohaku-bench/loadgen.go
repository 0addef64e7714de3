package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"kohaku/tools/internal/sim"
)

// The load generator drives one server at a fixed concurrency, in a closed loop: each of
// its workers sends its next request when its last was answered. Over h2c it opens
// Connections connections and runs Streams workers on each, as Sora's stats exporter
// multiplexes its reports; over HTTP/1.1 it runs Connections×Streams workers, each on a
// connection of its own, as many requests in flight with one per connection, as Sora's
// stats webhook sends them. Every worker owns a copy of the body and, unless the load
// repeats it on purpose, writes a new envelope timestamp into it before each request
// (stamper): every body of a benchmark run is distinct, so JetStream stores each one
// instead of answering it as a duplicate of an earlier one within its window.

// level is one load level: connections, each with up to streams requests in flight.
type level struct {
	Connections int `json:"connections"`
	Streams     int `json:"streams"`
}

func (l level) String() string { return fmt.Sprintf("%dx%d", l.Connections, l.Streams) }

// inFlight is the requests in flight at once at l.
func (l level) inFlight() int { return l.Connections * l.Streams }

// parseLevels reads "8x32,64x4".
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

// loadResult is what one load run measured.
type loadResult struct {
	Requests  int64   `json:"requests"`  // answered with 204 during the measurement
	Failed    int64   `json:"failed"`    // not answered, or answered with another status
	Seconds   float64 `json:"seconds"`   // length of the measurement
	PerSecond float64 `json:"req_per_s"` // 204 answers per second
	P50ms     float64 `json:"p50_ms"`
	P99ms     float64 `json:"p99_ms"`
	MaxMs     float64 `json:"max_ms"`
	// PeakRSSMiB is the server's peak resident set size during the run.
	PeakRSSMiB float64 `json:"peak_rss_mib"`
	// CPUSeconds is the server process's CPU time during the measurement (its share
	// of the run's, by time); CPUPerRequestUs that per request.
	CPUSeconds      float64 `json:"cpu_s"`
	CPUPerRequestUs float64 `json:"cpu_us_per_request"`
	// LastFailure is the last failure's error or status, for the progress log.
	LastFailure string `json:"last_failure,omitempty"`
}

// pool adds the result of another round of the same run to r: rates over the rounds' total
// time, percentiles over all their requests (lat holds every latency so far).
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
	if o.LastFailure != "" {
		r.LastFailure = o.LastFailure
	}
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

// stamper hands out the envelope timestamps of a benchmark run: each is one microsecond
// after the last, so that no two bodies stamped by it are the same, whichever phase,
// target or server they go to. It is safe for concurrent use.
type stamper struct {
	base time.Time
	seq  atomic.Int64
}

func newStamper(base time.Time) *stamper { return &stamper{base: base.Truncate(time.Microsecond)} }

// next returns a timestamp that no earlier call returned.
func (s *stamper) next() time.Time {
	return s.base.Add(time.Duration(s.seq.Add(1)) * time.Microsecond)
}

// stampedBody is a body whose envelope timestamp's text starts at at (stampAt).
type stampedBody struct {
	data []byte
	at   int
}

func newStampedBody(data []byte) (stampedBody, error) {
	at, err := stampAt(data)
	return stampedBody{data, at}, err
}

// load is the traffic of one run: where it goes, over which protocol, at which level and
// with which body.
type load struct {
	url    string
	header string // the header that names the body's type, and the type
	typ    string
	http1  bool // HTTP/1.1, a connection per request in flight; h2c otherwise
	level  level
	body   stampedBody
	stamp  *stamper // nil: every request sends body as it is, the same each time
}

// run sends l for warmup and then duration and returns what was answered during duration:
// 204s count as requests, anything else as failed. The latencies are those of the 204s,
// in ms.
func (l load) run(ctx context.Context, warmup, duration time.Duration) (loadResult, []float64, error) {
	clients, perClient, err := l.clients()
	if err != nil {
		return loadResult{}, nil, err
	}
	defer func() {
		for _, c := range clients {
			c.CloseIdleConnections()
		}
	}()
	start := time.Now().Add(warmup)
	end := start.Add(duration)
	var (
		mu      sync.Mutex
		res     = loadResult{Seconds: duration.Seconds()}
		lat     []float64
		wg      sync.WaitGroup
		latency = func(a answer, sent, done time.Time) {
			if sent.Before(start) || done.After(end) {
				return // outside the measurement
			}
			mu.Lock()
			defer mu.Unlock()
			switch {
			case a.err == nil && a.status == http.StatusNoContent:
				res.Requests++
				lat = append(lat, ms(done.Sub(sent)))
				return
			case a.err != nil:
				res.LastFailure = a.err.Error()
			default:
				res.LastFailure = "status " + strconv.Itoa(a.status)
			}
			res.Failed++
		}
	)
	for _, c := range clients {
		for range perClient {
			wg.Go(func() {
				buf := bytes.Clone(l.body.data)
				for ctx.Err() == nil && time.Now().Before(end) {
					if l.stamp != nil {
						stamp(buf, l.body.at, l.stamp.next())
					}
					sent := time.Now()
					a, reusable := l.send(ctx, c, buf)
					latency(a, sent, time.Now())
					if !reusable {
						buf = bytes.Clone(l.body.data)
					}
				}
			})
		}
	}
	wg.Wait()
	if ctx.Err() != nil {
		return loadResult{}, nil, errStopped
	}
	res.PerSecond = float64(res.Requests) / res.Seconds
	res.P50ms, res.P99ms, res.MaxMs = percentile(lat, 0.5), percentile(lat, 0.99), percentile(lat, 1)
	if res.Requests == 0 {
		return res, nil, fmt.Errorf("no request was answered 204 in %s (last failure: %s)", duration, res.LastFailure)
	}
	return res, lat, nil
}

// clients returns the clients of l and how many workers each gets: one h2c client per
// connection, each with its own transport and so its own connection; or one HTTP/1.1
// client whose transport opens a connection for each worker.
func (l load) clients() ([]*http.Client, int, error) {
	o := sim.ClientOptions{Timeout: 30 * time.Second, HTTP1: l.http1}
	if l.http1 {
		c, err := sim.NewClient(l.url, o)
		if err != nil {
			return nil, 0, err
		}
		// The transport takes a connection back a moment after its answer was read: a
		// worker that is quicker dials another one unless the connections are capped.
		c.Transport.(*http.Transport).MaxConnsPerHost = l.level.inFlight()
		return []*http.Client{c}, l.level.inFlight(), nil
	}
	out := make([]*http.Client, l.level.Connections)
	for i := range out {
		c, err := sim.NewClient(l.url, o)
		if err != nil {
			return nil, 0, err
		}
		// Without it, requests that find no connection each dial one of their own at the
		// start, before the first connection is up.
		c.Transport.(*http.Transport).MaxConnsPerHost = 1
		out[i] = c
	}
	return out, l.level.Streams, nil
}

// answer is how one request ended.
type answer struct {
	status int
	took   time.Duration
	err    error
}

// send posts body and returns the answer, and whether body may be written again: the
// transport closes a request's body once it is done with it, which may be after the
// answer came, and the worker waits for that.
func (l load) send(ctx context.Context, c *http.Client, body []byte) (answer, bool) {
	rb := &requestBody{Reader: bytes.NewReader(body), closed: make(chan struct{})}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, l.url, rb)
	if err != nil {
		return answer{err: err}, false
	}
	req.ContentLength = int64(len(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(l.header, l.typ)
	start := time.Now()
	resp, err := c.Do(req)
	if err != nil {
		return answer{err: err}, false
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	a := answer{status: resp.StatusCode, took: time.Since(start)}
	select {
	case <-rb.closed:
		return a, true
	default:
	}
	t := time.NewTimer(time.Second)
	defer t.Stop()
	select {
	case <-rb.closed:
		return a, true
	case <-t.C:
		return a, false
	case <-ctx.Done():
		return a, false
	}
}

// requestBody is a request's body that tells when the transport closed it.
type requestBody struct {
	*bytes.Reader
	once   sync.Once
	closed chan struct{}
}

func (b *requestBody) Close() error {
	b.once.Do(func() { close(b.closed) })
	return nil
}
