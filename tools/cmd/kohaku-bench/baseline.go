package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"kohaku/pkg/sora"
	"kohaku/pkg/stream"
)

// The baseline is what the receiver is compared with: the least an HTTP server can do to
// store a request's body in JetStream. It runs as a child process of the benchmark, like
// the receiver, so that both pay the same process and scheduling costs, and takes the same
// load from the same load generator.

// maxStreams is the HTTP/2 concurrent-stream limit of the baseline, the receiver's default.
const maxStreams = 250

// runPublishBaseline is the baseline-publish subcommand: an HTTP/1.1 and h2c server that
// reads each body on POST /collector or POST /stats-webhook and publishes it to JetStream
// as the receiver does (stream.NewMsg: same subject, same headers, the same Nats-Msg-Id, a
// hash of the body, so that each message costs the stream what the receiver's does), and
// answers 204 after the PubAck. It validates nothing, limits nothing and counts nothing:
// that is the receiver's own cost.
func runPublishBaseline(args []string) error {
	fs := flag.NewFlagSet("baseline-publish", flag.ContinueOnError)
	listen := fs.String("listen", "127.0.0.1:0", "address to serve HTTP/1.1 and h2c on")
	natsURL := fs.String("nats", "", "NATS URL")
	if err := fs.Parse(args); err != nil {
		return err
	}
	nc, err := nats.Connect(*natsURL, nats.Name("kohaku-bench baseline-publish"))
	if err != nil {
		return fmt.Errorf("connect to %s: %w", *natsURL, err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return fmt.Errorf("jetstream: %w", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	_, err = stream.Ensure(ctx, js, stream.DefaultConfig())
	cancel()
	if err != nil {
		return err
	}
	publish := func(typeHeader string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			body, err := readBody(r)
			if err != nil {
				w.WriteHeader(http.StatusBadRequest)
				return
			}
			ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
			defer cancel()
			msg := stream.NewMsg(r.Header.Get(typeHeader), body, time.Now(), "baseline-publish")
			if _, err := js.PublishMsg(ctx, msg); err != nil {
				w.WriteHeader(http.StatusServiceUnavailable)
				return
			}
			w.WriteHeader(http.StatusNoContent)
		}
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /collector", publish(sora.HeaderExporterType))
	mux.HandleFunc("POST /stats-webhook", publish(sora.HeaderWebhookType))
	return serveBaseline(*listen, mux)
}

// readBody reads a request body into one buffer sized by Content-Length.
func readBody(r *http.Request) ([]byte, error) {
	var buf bytes.Buffer
	if r.ContentLength > 0 {
		buf.Grow(int(r.ContentLength) + bytes.MinRead)
	}
	_, err := buf.ReadFrom(io.LimitReader(r.Body, 4<<20))
	return buf.Bytes(), err
}

// serveBaseline serves mux and GET /.ok with 204, over HTTP/1.1 and h2c, until SIGTERM or
// SIGINT.
func serveBaseline(listen string, mux *http.ServeMux) error {
	mux.HandleFunc("GET /.ok", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) })
	var p http.Protocols
	p.SetHTTP1(true)
	p.SetUnencryptedHTTP2(true)
	srv := &http.Server{
		Handler:           mux,
		Protocols:         &p,
		ReadHeaderTimeout: 5 * time.Second,
		HTTP2:             &http.HTTP2Config{MaxConcurrentStreams: maxStreams},
		ErrorLog:          log.New(io.Discard, "", 0),
	}
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", listen, err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(sctx)
	}()
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
