package collector_test

import (
	"bufio"
	"bytes"
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
