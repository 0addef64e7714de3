package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"kohaku/pkg/admin"
	"kohaku/pkg/stream"
	"kohaku/writer/embedded"
	"kohaku/writer/internal/ingest"
	"kohaku/writer/internal/store"
)

// runWriter is the run subcommand: it serves the admin endpoints, starts the embedded
// JetStream when configured, migrates the database, makes sure the stream exists and
// writes the stream into the database until ctx ends.
func runWriter(ctx context.Context, cfg Config, log *slog.Logger) error {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	rd := &readiness{ctx: ctx}
	rd.set("starting")

	ln, err := net.Listen("tcp", cfg.AdminListen)
	if err != nil {
		return fmt.Errorf("admin listener on KOHAKU_ADMIN_LISTEN %s: %w", cfg.AdminListen, err)
	}
	srv := admin.Server(cfg.AdminListen, reg, rd.ready, admin.WithPprof(cfg.Pprof))
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("admin listener failed", "err", err)
		}
	}()
	defer func() {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		srv.Shutdown(sctx)
	}()
	log.Info("admin listener ready", "addr", ln.Addr().String())

	natsURL := cfg.NATSURL
	if cfg.EmbeddedNATS {
		ns, err := startEmbedded(cfg, log)
		if err != nil {
			return err
		}
		defer ns.Shutdown() // after the connection below is closed
		natsURL = ns.URL()
	}
	nc, err := stream.Connect(natsURL, "kohaku-writer", log, stream.RetryOnFailedConnect())
	if err != nil {
		return err
	}
	defer func() {
		// Acks are sent asynchronously: push the last ones out before closing.
		if err := nc.FlushTimeout(5 * time.Second); err != nil && nc.IsConnected() {
			log.Warn("flushing the last acknowledgements failed; their messages will come again", "err", err)
		}
		stream.Close(nc)
	}()
	rd.nc.Store(nc)
	js, err := jetstream.New(nc)
	if err != nil {
		return fmt.Errorf("jetstream: %w", err)
	}

	pool, err := openPool(ctx, cfg.DatabaseURL, cfg.WriteConnections)
	if err != nil {
		return err
	}
	defer pool.Close()
	if cfg.Migrate {
		rd.set("migrating the database")
		err = prepareDatabase(ctx, cfg, pool, true, log)
	} else {
		// The tables are still checked: a schema behind this writer stops it with the
		// missing columns named, instead of failing every COPY forever.
		rd.set("checking the database schema")
		err = requireSchema(ctx, pool, true, log)
	}
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	if cfg.ManageStream {
		rd.set("creating the stream")
		report := func(err error) { log.Warn("JetStream unavailable, retrying", "stream", stream.Name, "err", err) }
		if _, err := stream.EnsureRetry(ctx, js, cfg.Stream(), report); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
	}

	st := store.New(pool, log, reg)
	if cfg.AnalyzeEvery > 0 {
		go newAnalyzer(pool, st, cfg.AnalyzeEvery, log, reg).run(ctx)
		log.Info("periodic analysis on", "every", cfg.AnalyzeEvery)
	}

	c, err := ingest.New(js, st, cfg.Options, log, reg)
	if err != nil {
		return err
	}
	rd.consumer.Store(c)
	log.Info("running", "stream", stream.Name, "consumer", stream.Consumer, "nats", natsURL,
		"batch_size", cfg.BatchSize, "batch_wait", cfg.BatchWait)
	err = c.Run(ctx)
	log.Info("kohaku-writer stopped")
	return err
}

// readiness answers /readyz: the phase of the start until the consumer runs, then the
// consumer's own readiness.
type readiness struct {
	ctx      context.Context // ends on shutdown
	phase    atomic.Pointer[string]
	nc       atomic.Pointer[nats.Conn]
	consumer atomic.Pointer[ingest.Consumer]
}

func (r *readiness) set(phase string) { r.phase.Store(&phase) }

func (r *readiness) ready(ctx context.Context) error {
	if r.ctx.Err() != nil {
		return errors.New("shutting down")
	}
	if nc := r.nc.Load(); nc != nil && !nc.IsConnected() {
		return fmt.Errorf("NATS not connected (%s)", nc.Status())
	}
	if c := r.consumer.Load(); c != nil {
		return c.Ready(ctx)
	}
	return errors.New(*r.phase.Load())
}

// startEmbedded starts the embedded JetStream server of the single-machine mode.
func startEmbedded(cfg Config, log *slog.Logger) (*embedded.Server, error) {
	// A NATS server of the system often holds the default port: say so plainly rather
	// than wait for a server that cannot listen.
	l, err := net.Listen("tcp", cfg.EmbeddedNATSListen)
	if err != nil {
		return nil, fmt.Errorf("KOHAKU_EMBEDDED_NATS_LISTEN %s is taken, is a NATS server running there? Use it with KOHAKU_EMBEDDED_NATS=false and KOHAKU_NATS_URL=nats://%s, or choose another address: %w",
			cfg.EmbeddedNATSListen, cfg.EmbeddedNATSListen, err)
	}
	l.Close()
	ns, err := embedded.Start(embedded.Options{Listen: cfg.EmbeddedNATSListen, Dir: cfg.EmbeddedNATSDir, Sync: cfg.EmbeddedNATSSync})
	if err != nil {
		return nil, err
	}
	log.Info("embedded JetStream server running", "url", ns.URL(), "dir", cfg.EmbeddedNATSDir, "sync", cfg.EmbeddedNATSSync.String())
	return ns, nil
}
