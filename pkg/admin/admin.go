// Package admin serves a service's operational endpoints: /healthz (the process is alive),
// /readyz (it can do its job now), /metrics (Prometheus text format) and, when enabled,
// /debug/pprof/ (Go's runtime profiles).
package admin

import (
	"context"
	"net/http"
	"net/http/pprof"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// ReadyFunc reports why the service cannot do its job now, or nil when it can.
type ReadyFunc func(ctx context.Context) error

// Option configures Handler and Server.
type Option func(*options)

type options struct {
	pprof bool
}

// WithPprof serves Go's profiles under /debug/pprof/ when on (net/http/pprof: the index,
// cmdline, profile, symbol, trace and the named profiles such as heap and goroutine);
// without it those paths are 404. Profiles show the program's internals and a CPU profile
// costs CPU while it runs, so services leave it off unless an operator turns it on.
func WithPprof(on bool) Option {
	return func(o *options) { o.pprof = on }
}

// maxProfile is the longest CPU profile or trace that Server lets finish: pprof refuses a
// ?seconds= beyond the server's WriteTimeout.
const maxProfile = 60 * time.Second

// Handler returns the admin handler. /readyz answers 200 when ready returns nil and 503
// with the error text otherwise.
func Handler(reg prometheus.Gatherer, ready ReadyFunc, opts ...Option) http.Handler {
	o := apply(opts)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		if err := ready(ctx); err != nil {
			http.Error(w, "not ready: "+err.Error(), http.StatusServiceUnavailable)
			return
		}
		w.Write([]byte("ready\n"))
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	if o.pprof {
		// Registered on mux, not on http.DefaultServeMux, which nothing here serves.
		mux.HandleFunc("/debug/pprof/", pprof.Index) // also the named profiles: heap, goroutine, ...
		mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	return mux
}

// Server returns an HTTP server for Handler on addr with conservative timeouts; with
// profiling on, its WriteTimeout leaves room for a CPU profile or trace of up to a minute.
func Server(addr string, reg prometheus.Gatherer, ready ReadyFunc, opts ...Option) *http.Server {
	write := 30 * time.Second
	if apply(opts).pprof {
		write = maxProfile + 10*time.Second
	}
	return &http.Server{
		Addr:              addr,
		Handler:           Handler(reg, ready, opts...),
		ReadHeaderTimeout: 5 * time.Second,
		WriteTimeout:      write,
	}
}

func apply(opts []Option) options {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	return o
}
