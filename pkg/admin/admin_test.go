package admin_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"kohaku/pkg/admin"
)

func ready(context.Context) error { return nil }

func TestPprofAnswersOnlyWhenOn(t *testing.T) {
	tests := []struct {
		name     string
		opts     []admin.Option
		path     string
		want     int
		wantBody string
	}{
		{"off by default: index", nil, "/debug/pprof/", http.StatusNotFound, ""},
		{"off by default: heap", nil, "/debug/pprof/heap", http.StatusNotFound, ""},
		{"off: cmdline", []admin.Option{admin.WithPprof(false)}, "/debug/pprof/cmdline", http.StatusNotFound, ""},
		{"on: index", []admin.Option{admin.WithPprof(true)}, "/debug/pprof/", http.StatusOK, "goroutine"},
		{"on: a named profile", []admin.Option{admin.WithPprof(true)}, "/debug/pprof/goroutine?debug=1", http.StatusOK, "goroutine profile"},
		{"on: a short CPU profile", []admin.Option{admin.WithPprof(true)}, "/debug/pprof/profile?seconds=1", http.StatusOK, ""},
		{"on: the other endpoints stay", []admin.Option{admin.WithPprof(true)}, "/healthz", http.StatusOK, "ok"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(admin.Handler(prometheus.NewRegistry(), ready, tt.opts...))
			defer srv.Close()
			resp, err := http.Get(srv.URL + tt.path)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, err := io.ReadAll(resp.Body)
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != tt.want {
				t.Errorf("GET %s: got %d, want %d", tt.path, resp.StatusCode, tt.want)
			}
			if !strings.Contains(string(body), tt.wantBody) {
				t.Errorf("GET %s: body %.200q lacks %q", tt.path, body, tt.wantBody)
			}
		})
	}
}

func TestServerLeavesRoomForAProfile(t *testing.T) {
	tests := []struct {
		name    string
		opts    []admin.Option
		atLeast bool // WriteTimeout above a minute
	}{
		{"off", nil, false},
		{"on", []admin.Option{admin.WithPprof(true)}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := admin.Server(":0", prometheus.NewRegistry(), ready, tt.opts...)
			if got := srv.WriteTimeout.Seconds() > 60; got != tt.atLeast {
				t.Errorf("WriteTimeout %s: above a minute %t, want %t", srv.WriteTimeout, got, tt.atLeast)
			}
		})
	}
}
