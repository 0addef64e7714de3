package main

import (
	"context"
	"crypto/sha256"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"kohaku/pkg/sora"
)

// recorder is a server that answers 204 and records what it was sent.
type recorder struct {
	mu     sync.Mutex
	bodies map[[sha256.Size]byte]int
	types  map[string]int
	protos map[string]int
	conns  map[net.Conn]bool
}

func newRecorder(t *testing.T) (*recorder, string) {
	rec := &recorder{bodies: map[[sha256.Size]byte]int{}, types: map[string]int{}, protos: map[string]int{}, conns: map[net.Conn]bool{}}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		rec.mu.Lock()
		rec.bodies[sha256.Sum256(body)]++
		rec.types[r.Header.Get(sora.HeaderExporterType)+r.Header.Get(sora.HeaderWebhookType)]++
		rec.protos[r.Proto]++
		rec.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	srv.Config.Protocols = &http.Protocols{}
	srv.Config.Protocols.SetHTTP1(true)
	srv.Config.Protocols.SetUnencryptedHTTP2(true)
	srv.Config.ConnState = func(c net.Conn, s http.ConnState) {
		if s == http.StateNew {
			rec.mu.Lock()
			rec.conns[c] = true
			rec.mu.Unlock()
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	return rec, srv.URL
}

func TestLoadSendsDistinctBodiesAtItsConcurrency(t *testing.T) {
	data, err := fixtureBody()
	if err != nil {
		t.Fatal(err)
	}
	body, err := newStampedBody(data)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name      string
		feed      feed
		level     level
		repeat    bool
		wantConns int
		wantProto string
	}{
		{"exporter over h2c, a connection per level connection", exporterFeed, level{3, 4}, false, 3, "HTTP/2.0"},
		{"webhook over HTTP/1.1, a connection per request in flight", webhookFeed, level{5, 1}, false, 5, "HTTP/1.1"},
		{"repeated body", exporterFeed, level{2, 2}, true, 2, "HTTP/2.0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec, url := newRecorder(t)
			l := load{url: url + tt.feed.path, header: tt.feed.header, typ: tt.feed.typ, http1: tt.feed.http1,
				level: tt.level, body: body, stamp: newStamper(time.Now())}
			if tt.repeat {
				l.stamp = nil
			}
			res, lat, err := l.run(context.Background(), 0, 300*time.Millisecond)
			if err != nil {
				t.Fatal(err)
			}
			if res.Requests == 0 || res.Failed != 0 || int64(len(lat)) != res.Requests {
				t.Errorf("got %d requests, %d failed, %d latencies; want some, none failed, one latency each", res.Requests, res.Failed, len(lat))
			}
			rec.mu.Lock()
			defer rec.mu.Unlock()
			total := 0
			for _, n := range rec.bodies {
				total += n
			}
			switch {
			case tt.repeat && len(rec.bodies) != 1:
				t.Errorf("got %d distinct bodies of %d, want one", len(rec.bodies), total)
			case !tt.repeat && len(rec.bodies) != total:
				t.Errorf("got %d distinct bodies of %d, want all distinct", len(rec.bodies), total)
			}
			if len(rec.conns) != tt.wantConns {
				t.Errorf("got %d connections, want %d", len(rec.conns), tt.wantConns)
			}
			if rec.types[tt.feed.typ] != total || rec.protos[tt.wantProto] != total {
				t.Errorf("got types %v and protocols %v, want %s over %s for all %d", rec.types, rec.protos, tt.feed.typ, tt.wantProto, total)
			}
		})
	}
}

func TestStamperNeverRepeats(t *testing.T) {
	s := newStamper(time.Date(2025, 1, 1, 0, 0, 0, 999, time.UTC))
	seen := map[time.Time]bool{}
	for range 1000 {
		v := s.next()
		if seen[v] || v.Nanosecond()%1000 != 0 {
			t.Fatalf("%s repeats or is finer than a microsecond", v)
		}
		seen[v] = true
	}
}

func TestPercentileIsNearestRank(t *testing.T) {
	v := []float64{5, 1, 4, 2, 3, 10, 9, 8, 7, 6}
	tests := []struct {
		q    float64
		want float64
	}{{0.5, 5}, {0.99, 10}, {1, 10}, {0.1, 1}, {0.11, 2}}
	for _, tt := range tests {
		if got := percentile(v, tt.q); got != tt.want {
			t.Errorf("percentile(%v) = %v, want %v", tt.q, got, tt.want)
		}
	}
	if got := percentile(nil, 0.5); got != 0 {
		t.Errorf("percentile of nothing = %v, want 0", got)
	}
}

func TestParseLevels(t *testing.T) {
	got, err := parseLevels("8x32, 64x4")
	if err != nil || len(got) != 2 || got[0] != (level{8, 32}) || got[1] != (level{64, 4}) {
		t.Errorf("got %v, %v", got, err)
	}
	for _, bad := range []string{"", "8", "8x", "x3", "0x4", "8x32,"} {
		if _, err := parseLevels(bad); err == nil {
			t.Errorf("parseLevels(%q) accepted", bad)
		}
	}
}

func TestPoolAddsRounds(t *testing.T) {
	var r loadResult
	lat := []float64{1, 2}
	r.pool(loadResult{Requests: 100, Seconds: 1, PeakRSSMiB: 30}, lat)
	lat = append(lat, 3, 4)
	r.pool(loadResult{Requests: 300, Failed: 2, Seconds: 1, PeakRSSMiB: 20}, lat)
	if r.Requests != 400 || r.Failed != 2 || r.PerSecond != 200 || r.PeakRSSMiB != 30 || r.MaxMs != 4 {
		t.Errorf("got %+v", r)
	}
}
