// Package admin serves a service's operational endpoints: /healthz (the process is alive),
// /readyz (it can do its job now) and /metrics (Prometheus text format).
package admin

import (
	"context"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// ReadyFunc reports why the service cannot do its job now, or nil when it can.
type ReadyFunc func(ctx context.Context) error

// Handler returns the admin handler. /readyz answers 200 when ready returns nil and 503
// with the error text otherwise.
func Handler(reg prometheus.Gatherer, ready ReadyFunc) http.Handler {
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
	return mux
}

// Server returns an HTTP server for Handler on addr with conservative timeouts.
func Server(addr string, reg prometheus.Gatherer, ready ReadyFunc) *http.Server {
	return &http.Server{
		Addr:              addr,
		Handler:           Handler(reg, ready),
		ReadHeaderTimeout: 5 * time.Second,
		WriteTimeout:      30 * time.Second,
	}
}
