package reliability

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"kohaku/pkg/sora"
	"kohaku/testsupport/testenv"
	"kohaku/tools/internal/sim"
)

// Limits of the receiver in the hostile scenario, and what the test allows.
const (
	readTimeout = 2 * time.Second // KOHAKU_READ_TIMEOUT and KOHAKU_READ_HEADER_TIMEOUT
	cutOffSlack = 3 * time.Second // a slow client must be gone by readTimeout plus this
	maxRSS      = 150 << 20       // the receiver's resident memory, at any time
	oversize    = 8 << 20         // bodies twice the default limit of 4 MiB
)

func TestHostileClientsBesideGoodTraffic(t *testing.T) {
	p := newPipeline(t, setup{receivers: 1, receiverEnv: []string{
		"KOHAKU_READ_TIMEOUT=" + readTimeout.String(), "KOHAKU_READ_HEADER_TIMEOUT=" + readTimeout.String(),
	}})
	r := p.receivers[0]
	url := p.collectorURLs()[0]
	good := steady(7).start(t, []string{url})

	time.Sleep(time.Second)
	baseRSS, err := r.rss()
	if err != nil {
		t.Fatal(err)
	}
	baseGoroutines, err := r.metric("go_goroutines")
	if err != nil {
		t.Fatal(err)
	}

	// The hostile phase: every kind of bad client at once, for a few seconds, while the
	// memory is sampled.
	h := &hostile{t: t, url: url, addr: r.addr, rec: &recorder{}, reports: hostileReports(t)}
	hostileStart := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 2*readTimeout)
	peak := make(chan int64)
	go func() { peak <- sampleRSS(ctx, t, r) }()
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() { h.malformed(ctx) })
	}
	for range 2 {
		wg.Go(func() { h.oversized(ctx, true) })
		wg.Go(func() { h.oversized(ctx, false) })
		wg.Go(func() { h.reset(ctx) })
		wg.Go(func() { h.slowH2C() })
		wg.Go(func() { h.slowHTTP1(false) })
	}
	wg.Go(func() { h.slowHTTP1(true) })
	wg.Wait()
	cancel()
	maxRSSSeen := <-peak
	h.closeClients()

	time.Sleep(time.Second) // good traffic after the hostile phase
	rec := good.stop()

	rec.only(t, http.StatusNoContent, http.StatusServiceUnavailable) // good traffic: 503 only if the machine is slow
	if n := rec.acceptedBetween(hostileStart, hostileStart.Add(2*readTimeout)); n < 100 {
		t.Errorf("%d good requests answered 204 during the hostile phase, want at least 100", n)
	}
	for _, e := range h.rec.all() {
		if e.status == http.StatusNoContent || e.status >= 500 {
			t.Errorf("a hostile request was answered %d (%s %q...)", e.status, e.exporterType, cut(e.body, 60))
			break
		}
	}
	t.Logf("hostile requests: %s", h.tally())
	t.Logf("receiver memory: %d MiB before, at most %d MiB during the hostile phase (limit %d MiB)",
		baseRSS>>20, maxRSSSeen>>20, maxRSS>>20)
	if maxRSSSeen > maxRSS {
		t.Errorf("receiver resident memory reached %d MiB, more than %d MiB", maxRSSSeen>>20, maxRSS>>20)
	}
	// Nothing of the bad clients stays behind: no goroutine of a slow or reset request.
	testenv.Eventually(t, 10*time.Second, func() error {
		n, err := r.metric("go_goroutines")
		if err == nil && n > baseGoroutines+10 {
			err = fmt.Errorf("receiver has %v goroutines, %v before the hostile phase", n, baseGoroutines)
		}
		return err
	})

	// A hostile body is never stored: verify finds its rows unexpected.
	p.verify(append(rec.all(), h.rec.all()...), 300)
}

// sampleRSS returns the largest resident memory of r seen every 50ms until ctx ends.
func sampleRSS(ctx context.Context, t *testing.T, r *process) int64 {
	var peak int64
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		if n, err := r.rss(); err != nil {
			t.Error(err)
		} else {
			peak = max(peak, n)
		}
		select {
		case <-ctx.Done():
			return peak
		case <-tick.C:
		}
	}
}

// hostile is the bad clients of one receiver. Every request they make whose body could
// be stored goes to rec, so that verify checks that it was not.
type hostile struct {
	t       *testing.T
	url     string // the collector
	addr    string // its host:port, for raw HTTP/1.1
	rec     *recorder
	reports func() []byte // valid connection.user-agent bodies of connections of their own

	mu      sync.Mutex
	counts  map[string]int
	clients []*http.Client
}

func (h *hostile) count(kind string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.counts == nil {
		h.counts = map[string]int{}
	}
	h.counts[kind]++
}

func (h *hostile) tally() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return fmt.Sprint(h.counts)
}

// client returns a new h2c client: its own TCP connection, so that one bad client's
// connection errors do not end another's requests.
func (h *hostile) client() *http.Client {
	c, err := sim.NewClient(h.url, sim.ClientOptions{Timeout: 30 * time.Second})
	if err != nil {
		h.t.Fatal(err)
	}
	h.mu.Lock()
	h.clients = append(h.clients, c)
	h.mu.Unlock()
	return c
}

func (h *hostile) closeClients() {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, c := range h.clients {
		c.CloseIdleConnections()
	}
}

// hostileReports returns a source of valid report bodies from connections that send no
// good traffic: a row of theirs in the database can only come from a hostile request.
func hostileReports(t *testing.T) func() []byte {
	tmpl, err := sim.FixtureTemplate()
	if err != nil {
		t.Fatal(err)
	}
	conns, err := sim.NewConnections(tmpl, sim.Options{Connections: 4, Channels: 1, Seed: 666}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	n := 0
	return func() []byte {
		mu.Lock()
		defer mu.Unlock()
		n++
		return conns[n%len(conns)].Report(time.Now())
	}
}

// malformed floods the collector with requests that must be refused: bodies that are not
// JSON, lack or break a required field, and valid bodies under a wrong or unknown exporter
// type or content type.
func (h *hostile) malformed(ctx context.Context) {
	c := h.client()
	for i := 0; ctx.Err() == nil; i++ {
		body, typ, ctype := h.reports(), sora.TypeUserAgent, "application/json"
		switch i % 7 {
		case 0:
			body = []byte(`{"type": "connection.user-agent", "stats": [`)
		case 1:
			body = []byte(`[1, 2, 3]`)
		case 2:
			body = without(h.t, body, "session_id")
		case 3:
			body = bytes.Replace(body, []byte(`"multistream":`), []byte(`"multistream":null,"was":`), 1)
		case 4:
			typ = "connection.unknown"
		case 5:
			typ = sora.TypeErlangVM
		case 6:
			ctype = "text/plain"
		}
		req, err := http.NewRequest(http.MethodPost, h.url, bytes.NewReader(body))
		if err != nil {
			h.t.Error(err)
			return
		}
		req.Header.Set("Content-Type", ctype)
		req.Header.Set(sora.HeaderExporterType, typ)
		h.rec.add(do(c, req, typ, body))
		h.count("malformed")
	}
}

// without returns the JSON object body without its member key.
func without(t *testing.T, body []byte, key string) []byte {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(body, &m); err != nil {
		t.Fatal(err)
	}
	delete(m, key)
	out, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// oversized sends bodies twice the limit, with their length announced or, streamed
// without it, found while reading.
func (h *hostile) oversized(ctx context.Context, announced bool) {
	c := h.client()
	big := bytes.Repeat([]byte(" "), oversize)
	copy(big, `{"type":"connection.user-agent","stats":[`)
	for ctx.Err() == nil {
		var body io.Reader = bytes.NewReader(big)
		if !announced {
			body = io.MultiReader(body) // hides the length: the body goes out in DATA frames
		}
		req, err := http.NewRequest(http.MethodPost, h.url, body)
		if err != nil {
			h.t.Error(err)
			return
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set(sora.HeaderExporterType, sora.TypeUserAgent)
		e := do(c, req, sora.TypeUserAgent, nil)
		h.rec.add(e)
		if e.err == nil && e.status != http.StatusRequestEntityTooLarge {
			h.t.Errorf("a body of %d bytes (length announced: %t) was answered %d, want 413", oversize, announced, e.status)
		}
		h.count("oversized")
	}
}

// reset starts requests with valid bodies and abandons each in the middle of its body:
// the client sends RST_STREAM on the shared HTTP/2 connection.
func (h *hostile) reset(ctx context.Context) {
	c := h.client()
	for ctx.Err() == nil {
		body := h.reports()
		pr, pw := io.Pipe()
		rctx, abandon := context.WithCancel(ctx)
		req, err := http.NewRequestWithContext(rctx, http.MethodPost, h.url, pr)
		if err != nil {
			abandon()
			h.t.Error(err)
			return
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set(sora.HeaderExporterType, sora.TypeUserAgent)
		done := make(chan exchange, 1)
		go func() { done <- do(c, req, sora.TypeUserAgent, body) }()
		pw.Write(body[:len(body)/2]) // blocks until the transport has taken it
		time.Sleep(20 * time.Millisecond)
		abandon()
		pw.CloseWithError(context.Canceled)
		e := <-done
		e.aborted = true // half a body: it can never be stored
		h.rec.add(e)
		h.count("reset")
	}
}

// slowH2C sends one request whose body comes at one byte a second over h2c, and checks
// that the receiver cuts it off after its read timeout.
func (h *hostile) slowH2C() {
	c := h.client()
	pr, pw := io.Pipe()
	go func() {
		defer pw.Close()
		for _, b := range h.reports() {
			if _, err := pw.Write([]byte{b}); err != nil {
				return // the transport gave up on the body
			}
			time.Sleep(time.Second)
		}
	}()
	req, err := http.NewRequest(http.MethodPost, h.url, pr)
	if err != nil {
		h.t.Error(err)
		return
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(sora.HeaderExporterType, sora.TypeUserAgent)
	start := time.Now()
	e := do(c, req, sora.TypeUserAgent, nil)
	pr.CloseWithError(errors.New("request over"))
	e.aborted = true
	h.rec.add(e)
	h.cutOff("slow h2c body", start, e.status, e.err)
}

// slowHTTP1 sends one HTTP/1.1 request a byte a second, its headers (slowloris) or its
// body, and checks that the receiver closes the connection after its read timeout.
func (h *hostile) slowHTTP1(headers bool) {
	conn, err := net.Dial("tcp", h.addr)
	if err != nil {
		h.t.Error(err)
		return
	}
	defer conn.Close()
	head := "POST /collector HTTP/1.1\r\nHost: " + h.addr + "\r\nContent-Type: application/json\r\n" +
		sora.HeaderExporterType + ": " + sora.TypeUserAgent + "\r\nContent-Length: 100000\r\n\r\n"
	slow := []byte(`{"type":"connection.user-agent"` + strings.Repeat(" ", 1000))
	if headers {
		slow = []byte(head)
	} else if _, err := io.WriteString(conn, head); err != nil {
		h.t.Error(err)
		return
	}
	start := time.Now()
	stop, stopped := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(stopped)
		for _, b := range slow {
			select {
			case <-stop:
				return
			case <-time.After(time.Second):
			}
			if _, err := conn.Write([]byte{b}); err != nil {
				return
			}
		}
	}()
	// The answer, if any, and then the end of the connection.
	conn.SetReadDeadline(time.Now().Add(readTimeout + cutOffSlack + 5*time.Second))
	status := 0
	if resp, err := http.ReadResponse(bufio.NewReader(conn), nil); err == nil {
		status = resp.StatusCode
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	kind := "slow HTTP/1.1 body"
	if headers {
		kind = "slow HTTP/1.1 headers"
	}
	h.rec.add(exchange{exporterType: sora.TypeUserAgent, status: status, aborted: true, at: time.Now()})
	h.cutOff(kind, start, status, nil)
	close(stop)
	conn.Close()
	<-stopped
}

// cutOff checks that a slow request ended with an error or a 4xx soon after the read
// timeout, long before its body could have been sent.
func (h *hostile) cutOff(kind string, start time.Time, status int, err error) {
	h.count(kind)
	took := time.Since(start)
	h.t.Logf("%s: cut off after %s (status %d, error %v)", kind, took.Round(time.Millisecond), status, err)
	if took > readTimeout+cutOffSlack {
		h.t.Errorf("%s: cut off after %s, want within %s", kind, took.Round(time.Millisecond), readTimeout+cutOffSlack)
	}
	if err == nil && status != 0 && (status < 400 || status >= 500) {
		h.t.Errorf("%s: answered %d, want a 4xx or the connection or stream closed", kind, status)
	}
}

func cut(b []byte, n int) string {
	if len(b) > n {
		b = b[:n]
	}
	return string(b)
}
