package main

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"kohaku/tools/internal/sim"
)

func TestParseFlags(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		wantErr string
	}{
		{"defaults", nil, ""},
		{"all set", []string{"--url", "https://kohaku:5890/collector", "--connections", "5", "--interval", "1s",
			"--duration", "1m", "--concurrency", "2", "--ca", "ca.pem", "--cert", "c.pem", "--key", "k.pem"}, ""},
		{"no connections", []string{"--connections", "0"}, "--connections"},
		{"zero interval", []string{"--interval", "0s"}, "--interval"},
		{"negative duration", []string{"--duration", "-1s"}, "--duration"},
		{"no concurrency", []string{"--concurrency", "0"}, "--concurrency"},
		{"stray argument", []string{"extra"}, "unexpected"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseFlags(tt.args, io.Discard)
			if tt.wantErr == "" && err != nil {
				t.Fatalf("parseFlags(%q): %v", tt.args, err)
			}
			if tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Fatalf("parseFlags(%q) = %v, want an error about %s", tt.args, err, tt.wantErr)
			}
		})
	}
}

func TestRunReportsFailures(t *testing.T) {
	tests := []struct {
		name       string
		status     int
		wantFailed bool
	}{
		{"every report stored", http.StatusNoContent, false},
		{"collector answers 503", http.StatusServiceUnavailable, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				io.Copy(io.Discard, r.Body)
				w.WriteHeader(tt.status)
			}))
			srv.Config.Protocols = new(http.Protocols)
			srv.Config.Protocols.SetUnencryptedHTTP2(true)
			srv.Start()
			defer srv.Close()
			cfg, err := parseFlags([]string{"--url", srv.URL + "/collector", "--connections", "4",
				"--interval", "200ms", "--duration", "1100ms", "--seed", "1"}, io.Discard)
			if err != nil {
				t.Fatal(err)
			}
			var out bytes.Buffer
			totals, err := run(t.Context(), cfg, &out)
			if err != nil {
				t.Fatalf("run: %v", err)
			}
			if totals.Sent == 0 || totals.Done() != totals.Sent {
				t.Errorf("totals %+v: want reports sent and all of them ended", totals)
			}
			if got := totals.Failed() > 0; got != tt.wantFailed {
				t.Errorf("totals %+v: failed %t, want %t", totals, got, tt.wantFailed)
			}
			if !strings.Contains(out.String(), " sent ") || !strings.Contains(out.String(), "req/s") {
				t.Errorf("no progress line in output:\n%s", out.String())
			}
		})
	}
}

func TestProgressLine(t *testing.T) {
	prev := sim.Totals{Sent: 10, NoContent: 10}
	now := sim.Totals{Sent: 30, NoContent: 25, Other: 3, Errors: 1,
		Statuses: map[int]int64{503: 2, 400: 1}, LastProblem: "503 Service Unavailable: {}"}
	got := progress(now, prev, 3*time.Second, time.Second)
	for _, want := range []string{"3s", "sent 30", "204 25", "other 3 (400×1 503×2)", "errors 1", "19.0 req/s", "last: 503"} {
		if !strings.Contains(got, want) {
			t.Errorf("progress line %q lacks %q", got, want)
		}
	}
}
