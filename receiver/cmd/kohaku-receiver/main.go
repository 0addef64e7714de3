// Command kohaku-receiver is Kohaku's stateless HTTP ingest: it accepts Sora's stats
// webhook on POST /stats-webhook (KOHAKU_STATS_WEBHOOK_PATH) and the older stats exporter on
// POST /collector, optionally behind HTTP Basic authentication, and answers 204 once
// JetStream stored the body (DESIGN.md sections 1 to 3 and 5). Run any number of them
// behind a load balancer.
//
// Configuration is environment variables only; -h lists them with defaults. Over TLS, the
// receiver reads its certificate, key and client CAs again when their files change, and
// at once on SIGHUP; SIGTERM and SIGINT stop it gracefully.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"sync/atomic"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/kelseyhightower/envconfig"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"kohaku/pkg/admin"
	"kohaku/pkg/config"
	"kohaku/pkg/logging"
	"kohaku/pkg/stream"
	"kohaku/receiver/internal/collector"
)

// Config is the receiver's configuration, read from KOHAKU_* environment variables. The
// handler's and the HTTP server's parts are their packages' Options, which carry the tags.
type Config struct {
	Listen      string `default:":5890" desc:"address of the stats webhook and /collector (h2c and HTTP/1.1, or h2 and HTTP/1.1 over TLS)"`
	AdminListen string `split_words:"true" default:":5891" desc:"address of /healthz, /readyz and /metrics"`
	// Pprof serves Go's profiles on the admin address (admin.WithPprof).
	Pprof bool `default:"false" desc:"serve Go's runtime profiles under /debug/pprof/ on the admin address (CPU profiles and traces of up to 60s)"`

	TLSCertFile string `envconfig:"TLS_CERT_FILE" default:"" desc:"PEM certificate chain; with the key file, serves h2 over TLS instead of h2c"`
	TLSKeyFile  string `envconfig:"TLS_KEY_FILE" default:"" desc:"PEM private key of the certificate"`
	TLSClientCA string `envconfig:"TLS_CLIENT_CA" default:"" desc:"PEM file or directory of PEM files; makes client certificates required and verified against it"`

	BasicAuthUser         string `split_words:"true" default:"" desc:"with a password, the HTTP Basic authentication user that both ingest routes require (Sora's webhook_basic_authn settings)"`
	BasicAuthPassword     string `split_words:"true" default:"" desc:"password of KOHAKU_BASIC_AUTH_USER"`
	BasicAuthPasswordFile string `split_words:"true" default:"" desc:"file holding the password instead (a trailing newline is ignored)"`

	collector.Options       // KOHAKU_RECEIVER_ID, KOHAKU_STATS_WEBHOOK_PATH, KOHAKU_MAX_BODY_BYTES, ...
	collector.ServerOptions // KOHAKU_READ_HEADER_TIMEOUT, ..., KOHAKU_MAX_CONCURRENT_STREAMS

	// MemoryLimit is the Go runtime's soft memory limit (see memoryLimit).
	MemoryLimit int64 `split_words:"true" default:"134217728" desc:"soft limit in bytes of the receiver's memory, kept by collecting garbage more often (Go's GOMEMLIMIT, which wins when set); 0 for none"`

	ShutdownDelay   time.Duration `split_words:"true" default:"0s" desc:"after SIGTERM, time to keep serving while /readyz fails, so load balancers notice first"`
	ShutdownTimeout time.Duration `split_words:"true" default:"30s" desc:"after SIGTERM, longest wait for requests in flight to finish"`

	config.NATS
	config.Log
}

// Validate reports every invalid setting: those of each part, and those that involve
// several.
func (c *Config) Validate() error {
	errs := []error{c.NATS.Validate()}
	if c.Listen == "" {
		errs = append(errs, errors.New("KOHAKU_LISTEN is empty"))
	}
	if c.AdminListen == "" {
		errs = append(errs, errors.New("KOHAKU_ADMIN_LISTEN is empty"))
	}
	switch {
	case (c.TLSCertFile == "") != (c.TLSKeyFile == ""):
		errs = append(errs, errors.New("KOHAKU_TLS_CERT_FILE and KOHAKU_TLS_KEY_FILE go together"))
	case c.TLSClientCA != "" && c.TLSCertFile == "":
		errs = append(errs, errors.New("KOHAKU_TLS_CLIENT_CA needs KOHAKU_TLS_CERT_FILE and KOHAKU_TLS_KEY_FILE"))
	}
	switch {
	case c.BasicAuthPassword != "" && c.BasicAuthPasswordFile != "":
		errs = append(errs, errors.New("KOHAKU_BASIC_AUTH_PASSWORD and KOHAKU_BASIC_AUTH_PASSWORD_FILE exclude each other"))
	case c.BasicAuthUser == "" && (c.BasicAuthPassword != "" || c.BasicAuthPasswordFile != ""):
		errs = append(errs, errors.New("a Basic authentication password needs KOHAKU_BASIC_AUTH_USER"))
	case c.BasicAuthUser != "" && c.BasicAuthPassword == "" && c.BasicAuthPasswordFile == "":
		errs = append(errs, errors.New("KOHAKU_BASIC_AUTH_USER needs KOHAKU_BASIC_AUTH_PASSWORD or KOHAKU_BASIC_AUTH_PASSWORD_FILE"))
	case strings.Contains(c.BasicAuthUser, ":"):
		errs = append(errs, errors.New("KOHAKU_BASIC_AUTH_USER must not contain a colon (RFC 7617)"))
	}
	errs = append(errs, c.Options.Validate(), c.ServerOptions.Validate())
	if c.PublishTimeout > 0 && c.WriteTimeout <= c.PublishTimeout {
		// The answer to a request that waited for its PubAck must still get out.
		errs = append(errs, fmt.Errorf("KOHAKU_WRITE_TIMEOUT (%s) must exceed KOHAKU_PUBLISH_TIMEOUT (%s)", c.WriteTimeout, c.PublishTimeout))
	}
	if c.MemoryLimit < 0 {
		errs = append(errs, fmt.Errorf("KOHAKU_MEMORY_LIMIT must not be negative, got %d", c.MemoryLimit))
	}
	if c.ShutdownDelay < 0 || c.ShutdownTimeout <= 0 {
		errs = append(errs, errors.New("KOHAKU_SHUTDOWN_DELAY must not be negative and KOHAKU_SHUTDOWN_TIMEOUT must be positive"))
	}
	return errors.Join(errs...)
}

// BasicAuth returns the credential that the ingest routes require, nil when none is
// configured, reading the password file if there is one. Call it after Validate.
func (c *Config) BasicAuth() (*collector.BasicAuth, error) {
	if c.BasicAuthUser == "" {
		return nil, nil
	}
	password := c.BasicAuthPassword
	if c.BasicAuthPasswordFile != "" {
		b, err := os.ReadFile(c.BasicAuthPasswordFile)
		if err != nil {
			return nil, fmt.Errorf("KOHAKU_BASIC_AUTH_PASSWORD_FILE: %w", err)
		}
		// Editors and "echo" end files with a newline that is no part of the password.
		password = strings.TrimRight(string(b), "\r\n")
		if password == "" {
			return nil, fmt.Errorf("KOHAKU_BASIC_AUTH_PASSWORD_FILE: %s holds no password", c.BasicAuthPasswordFile)
		}
	}
	return &collector.BasicAuth{User: c.BasicAuthUser, Password: password}, nil
}

func main() {
	var cfg Config
	flag.Usage = func() {
		out := tabwriter.NewWriter(flag.CommandLine.Output(), 1, 0, 2, ' ', 0)
		fmt.Fprintf(out, "Usage: kohaku-receiver [-version]\n\nServes POST /stats-webhook (Sora's stats webhook; KOHAKU_STATS_WEBHOOK_PATH) and\nPOST /collector (Sora's older stats exporter) and stores each body in JetStream.\n-version prints its version and the commit it was built from.\n\n")
		envconfig.Usagef(config.Prefix, &cfg, out, envconfig.DefaultTableFormat)
		out.Flush()
	}
	version := flag.Bool("version", false, "print the version and the commit it was built from, and exit")
	flag.Parse()
	if *version {
		fmt.Println(logging.ReadBuild().Line("kohaku-receiver"))
		return
	}
	if err := envconfig.Process(config.Prefix, &cfg); err != nil {
		fmt.Fprintln(os.Stderr, "kohaku-receiver: configuration:", err)
		os.Exit(2)
	}
	if err := cfg.Validate(); err != nil {
		fmt.Fprintln(os.Stderr, "kohaku-receiver: configuration:", err)
		os.Exit(2)
	}
	log, err := logging.New(os.Stderr, "kohaku-receiver", cfg.LogFormat, cfg.LogLevel)
	if err != nil {
		fmt.Fprintln(os.Stderr, "kohaku-receiver: configuration:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	go func() {
		<-ctx.Done()
		stop() // a second signal ends the process at once
	}()
	if err := run(ctx, cfg, log); err != nil {
		log.Error("kohaku-receiver stopped", "err", err)
		os.Exit(1)
	}
}

// memoryLimit sets the Go runtime's soft memory limit to limit bytes, unless GOMEMLIMIT
// sets it already or limit is 0. Under load nearly all of a receiver's memory is the bodies
// in flight, which it holds only until their PubAck: Go's collector lets the heap grow to
// twice what is live before it collects, so that 256 reports of 189 KB in flight took
// 160-190 MiB; collecting earlier kept them at about 130 MiB (kohaku-bench). The limit is
// soft: with more bodies in flight than it holds (more connections or streams, larger
// reports) the receiver takes what they need and collects garbage more often, spending at
// most half of its CPU on it, as Go bounds it.
func memoryLimit(limit int64, log *slog.Logger) {
	if os.Getenv("GOMEMLIMIT") != "" {
		log.Info("memory limit set by GOMEMLIMIT, KOHAKU_MEMORY_LIMIT not applied", "GOMEMLIMIT", os.Getenv("GOMEMLIMIT"))
		return
	}
	if limit > 0 {
		debug.SetMemoryLimit(limit)
	}
}

// tlsPollInterval is how often the receiver looks whether its TLS files changed.
const tlsPollInterval = 5 * time.Second

// run serves until ctx ends, then shuts down gracefully: /readyz fails, the listener stops
// accepting, requests in flight finish (each still waits for its PubAck), and the NATS
// connection is drained.
func run(ctx context.Context, cfg Config, log *slog.Logger) error {
	if cfg.ReceiverID == "" {
		host, err := os.Hostname()
		if err != nil {
			return fmt.Errorf("receiver id from host name: %w", err)
		}
		cfg.ReceiverID = host
	}
	memoryLimit(cfg.MemoryLimit, log)
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	var certs *collector.TLSReloader
	if cfg.TLSCertFile != "" {
		files := collector.TLSFiles{CertFile: cfg.TLSCertFile, KeyFile: cfg.TLSKeyFile, ClientCA: cfg.TLSClientCA}
		c, err := collector.NewTLSReloader(files, log, reg)
		if err != nil {
			return err
		}
		certs = c
	}
	auth, err := cfg.BasicAuth()
	if err != nil {
		return err
	}

	// The connection returns at once even when NATS is down and reconnects forever, so that
	// the receiver can start before NATS and serves again by itself when NATS is back. Each
	// reconnection makes ManageStream check the stream again; the first connection does not,
	// since ManageStream's first attempt retries until NATS answers anyway.
	reconnected := make(chan struct{}, 1)
	var connects atomic.Int64
	nc, err := stream.Connect(cfg.NATSURL, "kohaku-receiver "+cfg.ReceiverID, log, stream.RetryOnFailedConnect(),
		stream.OnConnect(func() {
			if connects.Add(1) == 1 {
				return
			}
			select {
			case reconnected <- struct{}{}:
			default: // one pending check is enough
			}
		}))
	if err != nil {
		return err
	}
	closed := make(chan struct{})
	nc.SetClosedHandler(func(*nats.Conn) { close(closed) })
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return fmt.Errorf("jetstream: %w", err)
	}
	o := cfg.Options
	o.BasicAuth = auth
	h, err := collector.NewHandler(nc, js, o, log, reg)
	if err != nil {
		nc.Close()
		return err
	}
	bgCtx, stopBackground := context.WithCancel(context.Background())
	defer stopBackground()
	if cfg.ManageStream {
		go collector.ManageStream(bgCtx, js, cfg.Stream(), reconnected, log)
	}
	// The stream's series, and /readyz and /.ok failing while the stream is full.
	go h.WatchStream(bgCtx)

	so := cfg.ServerOptions
	if certs != nil {
		so.TLS = certs.Config()
		// Certificates are renewed without a restart: replaced files are read within two
		// polls, and SIGHUP reads them at once.
		hup := make(chan os.Signal, 1)
		signal.Notify(hup, syscall.SIGHUP)
		defer signal.Stop(hup)
		go certs.Watch(bgCtx, tlsPollInterval, hup)
	} else {
		signal.Ignore(syscall.SIGHUP) // nothing to read again, and no reason to die
	}
	so.MaxHeaderBytes = 64 << 10
	srv := collector.NewServer(h, so, log)
	adm := admin.Server(cfg.AdminListen, reg, h.Ready, admin.WithPprof(cfg.Pprof))

	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		nc.Close()
		return fmt.Errorf("listen on %s: %w", cfg.Listen, err)
	}
	admLn, err := net.Listen("tcp", cfg.AdminListen)
	if err != nil {
		ln.Close()
		nc.Close()
		return fmt.Errorf("listen on %s: %w", cfg.AdminListen, err)
	}
	// Tests and operators read the bound addresses from this line (ports may be 0).
	log.Info("listening", "addr", ln.Addr().String(), "admin_addr", admLn.Addr().String(),
		"tls", certs != nil, "client_certs", cfg.TLSClientCA != "", "receiver_id", cfg.ReceiverID,
		"max_body_bytes", cfg.MaxBodyBytes, "webhook_path", cfg.WebhookPath, "basic_auth", auth != nil)

	serveErr := make(chan error, 2)
	go func() { serveErr <- collector.Serve(srv, ln) }()
	go func() { serveErr <- adm.Serve(admLn) }()

	var failed error
	select {
	case <-ctx.Done():
		log.Info("shutting down", "delay", cfg.ShutdownDelay, "timeout", cfg.ShutdownTimeout)
	case failed = <-serveErr:
		// A listener failed: shut the rest down the same way, then report it.
		failed = fmt.Errorf("serve: %w", failed)
	}
	stopBackground()
	failed = errors.Join(failed, shutdown(cfg, h, srv, adm, nc, closed))
	if failed == nil {
		log.Info("stopped")
	}
	return failed
}

// shutdown fails /readyz, waits ShutdownDelay, stops accepting and waits for the requests in
// flight, drains the NATS connection and stops the admin server last, so that /metrics and
// /readyz answer until the end.
func shutdown(cfg Config, h *collector.Handler, srv, adm *http.Server, nc *nats.Conn, closed <-chan struct{}) error {
	h.StartDrain()
	time.Sleep(cfg.ShutdownDelay) // keep serving while load balancers see /readyz fail

	ctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	var failed error
	// Shutdown waits for every handler, each of which waits for its PubAck: a request
	// answered 204 is in the stream before the process exits.
	if err := srv.Shutdown(ctx); err != nil {
		failed = fmt.Errorf("shut down collector server: %w", err)
	}
	if err := nc.Drain(); err != nil {
		nc.Close() // not connected: nothing to flush
	}
	select {
	case <-closed:
	case <-ctx.Done():
		nc.Close()
	}
	if err := adm.Shutdown(ctx); err != nil {
		failed = errors.Join(failed, fmt.Errorf("shut down admin server: %w", err))
	}
	return failed
}
