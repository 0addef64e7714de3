package main

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"time"
)

//go:embed page.html
var page []byte

// report is one getStats() result as the page posts it.
type report struct {
	Peer  string          `json:"peer"`
	N     int             `json:"n"`
	Stats json.RawMessage `json:"stats"`
	at    time.Time       // when it arrived: the capture time
}

// pageServer serves the loopback-call page and collects what it posts back. Everything
// the page sends ends up on one of the channels, which the capture loop drains.
type pageServer struct {
	log     *slog.Logger
	reports chan report
	done    chan struct{}
	failed  chan string
}

func newPageServer(log *slog.Logger, reports int) *pageServer {
	return &pageServer{
		log:     log,
		reports: make(chan report, 2*reports),
		done:    make(chan struct{}, 1),
		failed:  make(chan string, 1),
	}
}

// maxReport bounds one posted report; real ones are tens of kilobytes.
const maxReport = 8 << 20

func (s *pageServer) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("content-type", "text/html; charset=utf-8")
		w.Header().Set("cache-control", "no-store")
		w.Write(page)
	})
	mux.HandleFunc("POST /report", func(w http.ResponseWriter, r *http.Request) {
		var rep report
		if err := decode(w, r, &rep); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		rep.at = time.Now()
		select {
		case s.reports <- rep:
			w.WriteHeader(http.StatusNoContent)
		default:
			http.Error(w, "more reports than asked for", http.StatusConflict)
		}
	})
	mux.HandleFunc("POST /log", func(w http.ResponseWriter, r *http.Request) {
		var m struct{ Msg string }
		if err := decode(w, r, &m); err == nil {
			s.log.Info("page", "msg", m.Msg)
		}
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("POST /error", func(w http.ResponseWriter, r *http.Request) {
		var m struct{ Msg string }
		if err := decode(w, r, &m); err != nil {
			m.Msg = "unreadable error report: " + err.Error()
		}
		select {
		case s.failed <- m.Msg:
		default: // the first error is the one that matters
		}
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("POST /done", func(w http.ResponseWriter, r *http.Request) {
		select {
		case s.done <- struct{}{}:
		default:
		}
		w.WriteHeader(http.StatusNoContent)
	})
	return mux
}

func decode(w http.ResponseWriter, r *http.Request, v any) error {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxReport))
	if err != nil {
		return fmt.Errorf("read %s: %w", r.URL.Path, err)
	}
	if err := json.Unmarshal(body, v); err != nil {
		return fmt.Errorf("decode %s: %w", r.URL.Path, err)
	}
	return nil
}
