package collector_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"kohaku/pkg/sora"
	"kohaku/testsupport/testenv"
)

func TestFloodOfBadRequestsLeavesNoGoroutinesOrMemory(t *testing.T) {
	// A small limit keeps the oversized bodies of the flood cheap to send.
	r := startReceiver(t, h2c, func(s *setup) { s.opts.MaxBodyBytes = 64 << 10 })
	h1c := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}} // a new connection each time
	good := marshal(t, userAgent(), nil)
	if a := r.post(sora.TypeUserAgent, good); a.status != http.StatusNoContent {
		t.Fatalf("warm-up: got %d %s", a.status, a.body)
	}
	r.tr.CloseIdleConnections()
	goroutines, heap := settle(t)

	bad := [][]byte{
		[]byte("{"), []byte(`{"type":"connection.user-agent"}`), []byte("null"),
		bytes.Repeat([]byte("["), 10000), bytes.Repeat([]byte("x"), int(r.h.BodyLimit())+1),
		bytes.Replace(good, []byte(`"sendrecv"`), []byte(`"sendrcv"`), 1),
	}
	const workers, perWorker = 8, 60
	var wg sync.WaitGroup
	start := time.Now()
	for w := range workers {
		wg.Go(func() {
			for i := range perWorker {
				body := bad[(w+i)%len(bad)]
				typ := sora.TypeUserAgent
				if i%7 == 0 {
					typ = "nope"
				}
				client := r.client
				if i%5 == 0 {
					client = h1c
				}
				req := r.request(typ, bytes.NewReader(body))
				if i%3 == 0 {
					req = r.request(typ, struct{ io.Reader }{bytes.NewReader(body)}) // no Content-Length
				}
				resp, err := client.Do(req)
				if err != nil && client == h1c && len(body) > int(r.h.BodyLimit()) {
					continue // HTTP/1 cannot refuse a body but by closing while the client writes
				}
				if err != nil {
					t.Errorf("request: %v", err)
					return
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode < 400 || resp.StatusCode >= 500 {
					t.Errorf("bad request answered %d", resp.StatusCode)
					return
				}
			}
		})
	}
	wg.Wait()
	t.Logf("%d bad requests in %s", workers*perWorker, time.Since(start))
	r.tr.CloseIdleConnections()

	testenv.Eventually(t, 10*time.Second, func() error {
		g, hp := settle(t)
		if g > goroutines+2 {
			return fmt.Errorf("%d goroutines after the flood, %d before", g, goroutines)
		}
		if hp > heap+16<<20 {
			return fmt.Errorf("heap %d MiB after the flood, %d MiB before", hp>>20, heap>>20)
		}
		return nil
	})
	t.Logf("settled %s after the flood", time.Since(start))
	if err := r.h.Ready(t.Context()); err != nil {
		t.Errorf("not ready after the flood: %v", err)
	}
	if a := r.post(sora.TypeUserAgent, good); a.status != http.StatusNoContent {
		t.Errorf("good request after the flood: got %d", a.status)
	}
}

// settle collects garbage and returns the goroutine count and live heap.
func settle(t testing.TB) (goroutines int, heap uint64) {
	t.Helper()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return runtime.NumGoroutine(), ms.HeapAlloc
}

func TestSlowClientsAreCutOff(t *testing.T) {
	r := startReceiver(t, h1, func(s *setup) {
		s.server.ReadHeaderTimeout = 200 * time.Millisecond
		s.server.ReadTimeout = 400 * time.Millisecond
		s.server.IdleTimeout = 300 * time.Millisecond
	})
	addr := strings.TrimPrefix(r.url, "http://")
	tests := []struct {
		name string
		send string // then the client stalls
	}{
		{"headers never finished", "POST /collector HTTP/1.1\r\nHost: x\r\nContent-Type: appl"},
		{"body never finished", "POST /collector HTTP/1.1\r\nHost: x\r\n" + sora.HeaderExporterType + ": " + sora.TypeUserAgent +
			"\r\nContent-Length: 1000\r\n\r\n{\"type\":"},
		{"idle after a request", "GET /.ok HTTP/1.1\r\nHost: x\r\n\r\n"},
		{"h2c preface then nothing", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			conn, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			if _, err := io.WriteString(conn, tc.send); err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			conn.SetReadDeadline(start.Add(5 * time.Second))
			// Whatever the server answers first, it must then close the connection.
			_, err = io.Copy(io.Discard, bufio.NewReader(conn))
			if err != nil {
				t.Fatalf("connection not closed by the server: %v", err)
			}
			if took := time.Since(start); took > 3*time.Second {
				t.Errorf("closed after %s, want within the timeouts", took)
			}
		})
	}
}

func TestHTTP2StreamsPerConnectionAreBounded(t *testing.T) {
	r := startReceiver(t, h2c, func(s *setup) { s.server.MaxConcurrentStreams = 7 })
	conn, err := net.Dial("tcp", strings.TrimPrefix(r.url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	// Client preface and an empty SETTINGS frame (RFC 9113 section 3.4).
	if _, err := io.WriteString(conn, "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00"); err != nil {
		t.Fatal(err)
	}
	// The server's first frame is its SETTINGS: 9-byte header, then 6-byte entries.
	var head [9]byte
	if _, err := io.ReadFull(conn, head[:]); err != nil {
		t.Fatal(err)
	}
	if head[3] != 0x4 {
		t.Fatalf("first frame type %#x, want SETTINGS", head[3])
	}
	payload := make([]byte, int(head[0])<<16|int(head[1])<<8|int(head[2]))
	if _, err := io.ReadFull(conn, payload); err != nil {
		t.Fatal(err)
	}
	for i := 0; i+6 <= len(payload); i += 6 {
		id := int(payload[i])<<8 | int(payload[i+1])
		val := int(payload[i+2])<<24 | int(payload[i+3])<<16 | int(payload[i+4])<<8 | int(payload[i+5])
		if id == 0x3 { // SETTINGS_MAX_CONCURRENT_STREAMS
			if val != 7 {
				t.Errorf("max concurrent streams: got %d, want 7", val)
			}
			return
		}
	}
	t.Error("server did not announce SETTINGS_MAX_CONCURRENT_STREAMS")
}

// TestSlowHeadersAreCutByTheHeaderTimeout dribbles a request's headers, a byte at a time,
// and wants the connection closed by the header timeout, not by the idle timeout. Over
// HTTP/2 the bytes are CONTINUATION frames of one byte each, after a HEADERS frame without
// END_HEADERS: Go's server applies ReadHeaderTimeout to HTTP/1 only (see NewServer).
func TestSlowHeadersAreCutByTheHeaderTimeout(t *testing.T) {
	const headerTimeout = time.Second
	run(t, func(t *testing.T, m mode) {
		r := startReceiver(t, m, func(s *setup) {
			s.server.ReadHeaderTimeout = headerTimeout
			s.server.ReadTimeout = time.Minute
			s.server.IdleTimeout = time.Minute // what cut them before
		})
		pad := hpackNewName("x-pad", strings.Repeat("a", 120))
		var conn net.Conn
		var send func(i int) error // sends the i-th byte
		switch m {
		case h1:
			c, err := net.Dial("tcp", strings.TrimPrefix(r.url, "http://"))
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			conn = c
			head := "POST /collector HTTP/1.1\r\nHost: kohaku\r\nX-Pad: " + strings.Repeat("a", 120)
			send = func(i int) error { _, err := c.Write([]byte{head[i%len(head)]}); return err }
		default:
			c := dialH2(t, r)
			conn = c.conn
			c.write(frame{typ: frameHeaders, stream: 1, payload: requestHeaders(m, hpackMethodPost, "/collector")})
			send = func(i int) error {
				return c.tryWrite(frame{typ: frameContinuation, stream: 1, payload: pad[i%len(pad) : i%len(pad)+1]})
			}
		}
		start := time.Now()
		// Far below the idle timeout: a connection still open then was not cut by the header timeout.
		conn.SetReadDeadline(start.Add(20 * time.Second))
		closed := make(chan error, 1)
		go func() {
			_, err := io.Copy(io.Discard, conn) // nil at EOF
			closed <- err
		}()
		tick := time.NewTicker(headerTimeout / 4) // a byte every 250 ms, as a slow client does
		defer tick.Stop()
		sent := 0
		for {
			select {
			case err := <-closed:
				var ne net.Error
				if errors.As(err, &ne) && ne.Timeout() {
					t.Fatalf("connection still open after %s and %d bytes of headers; header timeout %s", time.Since(start), sent, headerTimeout)
				}
				t.Logf("closed after %s and %d bytes of headers (%v)", time.Since(start).Round(time.Millisecond), sent, err)
				return
			case <-tick.C:
				if send(sent) == nil { // after the server closed, the writes fail: wait for the reader
					sent++
				}
			}
		}
	})
}

// TestLiveHTTP2ConnectionsOutlastTheHeaderTimeout keeps an HTTP/2 connection idle for longer
// than the header timeout, answering the server's PINGs as clients do, and then sends a
// request on it: the header timeout cuts only clients that do not answer.
func TestLiveHTTP2ConnectionsOutlastTheHeaderTimeout(t *testing.T) {
	for _, m := range []mode{h2c, h2} {
		t.Run(string(m), func(t *testing.T) {
			const headerTimeout = 500 * time.Millisecond
			r := startReceiver(t, m, func(s *setup) { s.server.ReadHeaderTimeout = headerTimeout })
			c := dialH2(t, r)
			c.conn.SetDeadline(time.Now().Add(20 * time.Second))
			start := time.Now()
			pings := 0
			for time.Since(start) < 3*headerTimeout { // the server pings every headerTimeout/2
				f, err := c.read()
				if err != nil {
					t.Fatalf("after %d PINGs answered: %v", pings, err)
				}
				if f.typ == framePing && f.flags&flagAck == 0 {
					c.write(frame{typ: framePing, flags: flagAck, payload: f.payload})
					pings++
				}
			}
			t.Logf("idle for %s, %d PINGs answered", time.Since(start).Round(time.Millisecond), pings)
			c.write(frame{typ: frameHeaders, flags: flagEndHeaders | flagEndStream, stream: 1, payload: requestHeaders(m, hpackMethodGet, "/.ok")})
			for {
				f, err := c.read()
				if err != nil {
					t.Fatalf("waiting for the answer: %v", err)
				}
				switch {
				case f.typ == framePing && f.flags&flagAck == 0:
					c.write(frame{typ: framePing, flags: flagAck, payload: f.payload})
				case f.typ == frameGoAway:
					t.Fatalf("GOAWAY %x", f.payload)
				case f.typ == frameHeaders && f.stream == 1:
					if len(f.payload) == 0 || f.payload[0] != hpackStatus204 {
						t.Fatalf("GET /.ok answered with header block %x, want :status 204", f.payload)
					}
					return
				}
			}
		})
	}
}

// TestClientResetsAreCountedApart cancels requests while their body is being read: an
// HTTP/2 client resets the stream, an HTTP/1 client closes the connection. They are
// counted as code="client_closed", not as the bad requests they are not.
func TestClientResetsAreCountedApart(t *testing.T) {
	run(t, func(t *testing.T, m mode) {
		r := startReceiver(t, m)
		body := marshal(t, userAgent(), nil)
		pr, pw := io.Pipe()
		defer pw.Close()
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		done := make(chan error, 1)
		go func() {
			resp, err := r.client.Do(r.request(sora.TypeUserAgent, pr).WithContext(ctx))
			if err == nil {
				resp.Body.Close()
				err = fmt.Errorf("answered %d", resp.StatusCode)
			}
			done <- err
		}()
		if _, err := pw.Write(body[:len(body)/2]); err != nil {
			t.Fatal(err)
		}
		testenv.Eventually(t, 10*time.Second, func() error {
			if n := r.metric("kohaku_receiver_in_flight_requests", nil); n != 1 {
				return fmt.Errorf("%v requests in flight, want 1 reading its body", n)
			}
			return nil
		})
		cancel()
		pw.CloseWithError(context.Canceled) // an HTTP/1 transport waits for the body's writer
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Fatalf("client: got %v, want context.Canceled", err)
		}
		testenv.Eventually(t, 10*time.Second, func() error {
			if n := r.metric("kohaku_receiver_in_flight_requests", nil); n != 0 {
				return fmt.Errorf("%v requests in flight", n)
			}
			return nil
		})
		ua := map[string]string{"exporter_type": sora.TypeUserAgent}
		for code, want := range map[string]float64{"client_closed": 1, "400": 0, "503": 0} {
			ua["code"] = code
			if got := r.metric("kohaku_receiver_requests_total", ua); got != want {
				t.Errorf("requests_total{code=%q}: got %v, want %v", code, got, want)
			}
		}
	})
}
