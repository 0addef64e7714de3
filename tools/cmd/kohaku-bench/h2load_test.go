package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestParseH2loadTakesTheMeasurementPeriod(t *testing.T) {
	out := `starting benchmark...
Warm-up phase is over for thread #0.

finished in 4.00s, 9730.00 req/s, 228.23KB/s
requests: 29190 total, 29190 started, 29190 done, 29190 succeeded, 0 failed, 0 errored, 0 timeout
status codes: 29000 2xx, 0 3xx, 190 4xx, 0 5xx
traffic: 684.70KB (701136) total, 71.38KB (73094) headers (space savings 95.29%), 0B (0) data
`
	got, err := parseH2load(out)
	if err != nil {
		t.Fatal(err)
	}
	// 29190 requests at 9730/s is a 3 s measurement, although "finished in" counts the
	// warm-up; only the 2xx answers count.
	if got.Requests != 29000 || got.Failed != 190 || got.Seconds != 3 {
		t.Errorf("got %+v, want 29000 answered, 190 failed in 3 s", got)
	}
	if want := 29000.0 / 3; got.PerSecond != want {
		t.Errorf("rate %f, want %f", got.PerSecond, want)
	}
}

func TestParseH2loadRefuses(t *testing.T) {
	tests := []struct{ name, out string }{
		{"no summary", "connect: connection refused\n"},
		{"nothing answered with 2xx", "finished in 1.00s, 10.00 req/s, 1KB/s\n" +
			"requests: 10 total, 10 started, 10 done, 10 succeeded, 0 failed, 0 errored, 0 timeout\n" +
			"status codes: 0 2xx, 0 3xx, 0 4xx, 10 5xx\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := parseH2load(tt.out); err == nil {
				t.Error("no error")
			}
		})
	}
}

func TestReadLatenciesKeepsOnly2xx(t *testing.T) {
	path := filepath.Join(t.TempDir(), "log")
	log := "1795935289640630\t204\t59382\n1795935289640631\t503\t100\n1795935289640632\t204\t1500\nbroken line\n"
	if err := os.WriteFile(path, []byte(log), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := readLatencies(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0] != 59.382 || got[1] != 1.5 {
		t.Errorf("got %v, want [59.382 1.5] ms", got)
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
	got, err := parseLevels("8x32, 64x16")
	if err != nil || len(got) != 2 || got[0] != (level{8, 32}) || got[1] != (level{64, 16}) {
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

func TestH2loadArgsPerFeed(t *testing.T) {
	tests := []struct {
		name    string
		webhook bool
		want    []string // in this order, each flag with its value
		absent  string
	}{
		{"exporter over h2c", false, []string{"-c 8 -m 32", "-H x-sora-stats-exporter-type: connection.user-agent", "http://h/collector"}, "--h1"},
		{"webhook over HTTP/1.1, a connection per request in flight", true,
			[]string{"--h1", "-c 256 -m 1", "-H sora-stats-webhook-type: connection.rtc", "http://h/collector"}, "x-sora-stats-exporter-type"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := strings.Join(h2loadArgs("http://h/collector", "body.json", "log", tt.webhook, level{8, 32}, time.Second, 3*time.Second), " ")
			rest := args
			for _, w := range tt.want {
				i := strings.Index(rest, w)
				if i < 0 {
					t.Fatalf("h2load %s: lacks %q, or not in order", args, w)
				}
				rest = rest[i+len(w):]
			}
			if strings.Contains(args, tt.absent) {
				t.Errorf("h2load %s: has %q", args, tt.absent)
			}
		})
	}
}
