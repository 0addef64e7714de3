package reliability

import (
	"bytes"
	"context"
	"io"
	"math/rand/v2"
	"net/http"
	"sync"
	"testing"
	"time"

	"kohaku/pkg/sora"
	"kohaku/tools/internal/sim"
)

// load is the traffic of simulated Sora connections.
type load struct {
	connections int           // simulated client connections, each reporting every interval
	interval    time.Duration // between two reports of one connection
	seed        uint64        // makes the connections and their ids differ between tests
	// twice sends every report a second time, to the next receiver, after a random delay
	// of at most retryDelay from the first: as Sora does when an answer is late.
	twice      bool
	retryDelay time.Duration
}

// steady is the load of most scenarios: ten connections reporting every 100ms, and the
// node's report, about 110 requests a second.
func steady(seed uint64) load {
	return load{connections: 10, interval: 100 * time.Millisecond, seed: seed}
}

// exchange is one request and how it ended.
type exchange struct {
	exporterType string
	body         []byte
	status       int       // 0 when no answer came
	err          error     // why no answer came
	at           time.Time // when it ended
	retryAfter   string    // the Retry-After header of the answer
	// aborted is a request whose client gave up before the whole body was sent: it can
	// never be stored, whatever the answer.
	aborted bool
}

// recorder keeps every exchange. It is safe for concurrent use.
type recorder struct {
	mu        sync.Mutex
	exchanges []exchange
}

func (r *recorder) add(e exchange) {
	r.mu.Lock()
	r.exchanges = append(r.exchanges, e)
	r.mu.Unlock()
}

// all returns the exchanges so far.
func (r *recorder) all() []exchange {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]exchange(nil), r.exchanges...)
}

// statuses counts the exchanges by status, 0 for no answer.
func (r *recorder) statuses() map[int]int {
	out := map[int]int{}
	for _, e := range r.all() {
		out[e.status]++
	}
	return out
}

// only fails the test when a request ended otherwise than with one of statuses.
func (r *recorder) only(t *testing.T, statuses ...int) {
	t.Helper()
	st := r.statuses()
	n := 0
	for _, s := range statuses {
		n += st[s]
	}
	if n != len(r.all()) {
		t.Errorf("answers %v (0: none), want only %v", st, statuses)
	}
	for _, e := range r.all() {
		if e.status == http.StatusServiceUnavailable && e.retryAfter == "" {
			t.Errorf("a 503 without Retry-After: the sender would not know to retry")
			break
		}
	}
}

// acceptedBetween returns the number of requests answered 204 between from and to.
func (r *recorder) acceptedBetween(from, to time.Time) int {
	n := 0
	for _, e := range r.all() {
		if e.status == http.StatusNoContent && e.at.After(from) && e.at.Before(to) {
			n++
		}
	}
	return n
}

// acceptedAfter returns the number of requests answered 204 after t.
func (r *recorder) acceptedAfter(t time.Time) int { return r.acceptedBetween(t, time.Now()) }

// h2cClient speaks HTTP/2 with prior knowledge, as Sora does with an http:// URL.
func h2cClient(t *testing.T) *http.Client {
	t.Helper()
	c, err := sim.NewClient("http://127.0.0.1/collector", sim.ClientOptions{Timeout: 15 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.CloseIdleConnections)
	return c
}

// running is load being sent.
type running struct {
	rec    *recorder
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// start sends l to the collector URLs, spreading the reports over them, until stop. One
// goroutine per simulated connection and one for the Sora node's own report make a report
// every interval and post it without waiting for the answer to the previous one.
func (l load) start(t *testing.T, urls []string) *running {
	t.Helper()
	tmpl, err := sim.FixtureTemplate()
	if err != nil {
		t.Fatal(err)
	}
	conns, err := sim.NewConnections(tmpl, sim.Options{Connections: l.connections, Channels: 2, Seed: l.seed}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	node := sim.NewNode(tmpl, l.seed)
	client := h2cClient(t)
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{rec: &recorder{}, cancel: cancel}
	for i := range len(conns) + 1 {
		rng := rand.New(rand.NewPCG(l.seed, uint64(i)))
		r.wg.Go(func() {
			tick := time.NewTicker(l.interval)
			defer tick.Stop()
			for n := i; ; n++ {
				typ, body := sora.TypeUserAgent, []byte(nil)
				if i == len(conns) {
					typ, body = sora.TypeErlangVM, node.Report(time.Now())
				} else {
					body = conns[i].Report(time.Now())
				}
				// A slow answer does not hold up the connection's next report: the load
				// stays steady whatever the receivers do.
				if l.twice {
					delay := time.Duration(rng.Int64N(int64(l.retryDelay) + 1))
					r.wg.Go(func() { l.sendTwice(client, r.rec, urls, n, typ, body, delay) })
				} else {
					r.wg.Go(func() { r.rec.add(post(client, urls[n%len(urls)], typ, body)) })
				}
				select {
				case <-ctx.Done():
					return
				case <-tick.C:
				}
			}
		})
	}
	return r
}

// sendTwice posts one report to urls[n] and, delay after it started, to the next receiver
// again: a retry may overtake the first attempt, or come long after it.
func (l load) sendTwice(client *http.Client, rec *recorder, urls []string, n int, typ string, body []byte, delay time.Duration) {
	var wg sync.WaitGroup
	wg.Go(func() { rec.add(post(client, urls[n%len(urls)], typ, body)) })
	time.Sleep(delay)
	rec.add(post(client, urls[(n+1)%len(urls)], typ, body))
	wg.Wait()
}

// stop ends the load and waits until every request has its answer.
func (r *running) stop() *recorder {
	r.cancel()
	r.wg.Wait()
	return r.rec
}

// post sends one report as Sora does and returns how it ended.
func post(client *http.Client, url, typ string, body []byte) exchange {
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return exchange{exporterType: typ, body: body, err: err, at: time.Now()}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(sora.HeaderExporterType, typ)
	return do(client, req, typ, body)
}

// do sends req and returns how it ended; body is what the database may hold because of
// it (nil when nothing can be stored of it anyway).
func do(c *http.Client, req *http.Request, typ string, body []byte) exchange {
	e := exchange{exporterType: typ, body: body}
	resp, err := c.Do(req)
	e.at = time.Now()
	if err != nil {
		e.err = err
		return e
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	e.status, e.retryAfter = resp.StatusCode, resp.Header.Get("Retry-After")
	return e
}
