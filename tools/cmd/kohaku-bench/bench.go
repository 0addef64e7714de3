package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"kohaku/pkg/stream"
	"kohaku/testsupport/proc"
)

// bench is one run of the benchmark: its work directory, the binaries, the database, the
// NATS server and the processes it started.
type bench struct {
	o        options
	log      io.Writer // progress
	dir      string
	self     string // this binary, for the baseline and nats subcommands
	receiver string
	writer   string
	dbURL    string
	natsURL  string
	nc       *nats.Conn
	js       jetstream.JetStream
	cleanups []func() error // run at the end, last added first: processes, the database
	res      *results
	stamp    *stamper // the envelope timestamps of every distinct body the run sends

	// Kept from one phase to the next.
	receiverProc *child
	receiverURL  string
	writerProc   *child
	writerAdmin  string
	natsProc     *child
}

// run runs every phase and writes the results.
func run(ctx context.Context, o options, stdout, stderr io.Writer) (err error) {
	b := &bench{o: o, log: stderr, res: &results{Started: time.Now().UTC(), Quick: o.quick}, stamp: newStamper(time.Now())}
	b.res.Machine = machine{CPUs: runtime.NumCPU(), GoVersion: runtime.Version()}
	b.res.Settings = settings{Levels: o.levels, Warmup: o.warmup.Seconds(), Duration: o.duration.Seconds(), Rounds: o.rounds,
		Messages: o.messages, BatchSize: o.batchSize, E2EDuration: o.e2eDuration.Seconds(), PollEveryMs: ms(o.pollEvery)}
	if b.dir, err = os.MkdirTemp("", "kohaku-bench-"); err != nil {
		return fmt.Errorf("work directory: %w", err)
	}
	defer os.RemoveAll(b.dir)
	defer func() { err = errors.Join(err, b.stopAll()) }()

	if err := b.setup(ctx); err != nil {
		return err
	}
	defer b.nc.Close()
	for _, phase := range []struct {
		name string
		run  func(context.Context) error
	}{
		{phaseReceiver, b.receiverPhase},
		{phaseFsync, b.fsyncPhase},
		{phaseWriter, b.writerPhase},
		{phaseEndToEnd, b.endToEndPhase},
	} {
		if !slices.Contains(o.phases, phase.name) {
			continue
		}
		b.res.Phases = append(b.res.Phases, phase.name)
		b.progress("== %s", phase.name)
		if err := phase.run(ctx); err != nil {
			return fmt.Errorf("%s phase: %w", phase.name, err)
		}
	}
	b.res.evaluate()
	b.res.Finished = time.Now().UTC()
	if err := b.res.write(b.o.out); err != nil {
		return err
	}
	b.res.table(stdout)
	fmt.Fprintf(stdout, "\nresults: %s\n", b.o.out)
	return nil
}

// setup finds or builds the binaries, creates and migrates the database and starts NATS.
func (b *bench) setup(ctx context.Context) error {
	var err error
	if b.self, err = os.Executable(); err != nil {
		return fmt.Errorf("find own binary: %w", err)
	}
	b.receiver, b.writer = b.o.receiverBin, b.o.writerBin
	if b.receiver == "" || b.writer == "" {
		if err := b.build(ctx); err != nil {
			return err
		}
	}
	for _, v := range []string{b.receiver, b.writer} {
		if _, err := os.Stat(v); err != nil {
			return fmt.Errorf("binary: %w", err)
		}
	}

	dbURL, drop, err := createDatabase(ctx, b.o.databaseURL)
	if err != nil {
		return fmt.Errorf("%w (is PostgreSQL running? see --database-url)", err)
	}
	b.dbURL = dbURL
	b.cleanups = append(b.cleanups, drop)
	b.progress("database %s", redact(dbURL))
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		return fmt.Errorf("connect to the benchmark database: %w", err)
	}
	conn.QueryRow(ctx, "SHOW server_version").Scan(&b.res.Machine.PostgreSQL)
	conn.Close(ctx)
	migrate := exec.CommandContext(ctx, b.writer, "migrate")
	migrate.Env = append(os.Environ(), "KOHAKU_DATABASE_URL="+dbURL, "KOHAKU_LOG_FORMAT=json", "KOHAKU_LOG_LEVEL=warn")
	if out, err := migrate.CombinedOutput(); err != nil {
		return fmt.Errorf("kohaku-writer migrate: %w\n%s", err, out)
	}

	addr, err := proc.PickAddr()
	if err != nil {
		return err
	}
	ns, err := b.start("nats", b.self, []string{"nats", "-listen", addr, "-dir", filepath.Join(b.dir, "jetstream")})
	if err != nil {
		return err
	}
	if err := ns.waitTCP(addr, 30*time.Second); err != nil {
		return err
	}
	b.natsProc = ns
	b.natsURL = "nats://" + addr
	if b.nc, err = nats.Connect(b.natsURL, nats.Name("kohaku-bench")); err != nil {
		return fmt.Errorf("connect to %s: %w", b.natsURL, err)
	}
	if b.js, err = jetstream.New(b.nc); err != nil {
		return fmt.Errorf("jetstream: %w", err)
	}
	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	_, err = stream.Ensure(sctx, b.js, stream.DefaultConfig())
	return err
}

// releaseExperiment is what the programs are built with for release (deploy/Dockerfile,
// make build): the JSON checks' vector instructions (README "Build").
const releaseExperiment = "GOEXPERIMENT=simd"

// build builds kohaku-receiver and kohaku-writer from the workspace that holds the current
// directory into the work directory, as they are built for release.
func (b *bench) build(ctx context.Context) error {
	out, err := exec.CommandContext(ctx, "go", "env", "GOWORK").Output()
	work := strings.TrimSpace(string(out))
	if err != nil || work == "" || work == "off" {
		return errors.New("not inside the Kohaku workspace (go env GOWORK is empty): run from the checkout or give --receiver and --writer")
	}
	b.progress("building kohaku-receiver and kohaku-writer")
	if err := proc.GoBuild(ctx, filepath.Dir(work), b.dir+string(os.PathSeparator), []string{releaseExperiment},
		"./receiver/cmd/kohaku-receiver", "./writer/cmd/kohaku-writer"); err != nil {
		return err
	}
	if b.receiver == "" {
		b.receiver = filepath.Join(b.dir, "kohaku-receiver")
	}
	if b.writer == "" {
		b.writer = filepath.Join(b.dir, "kohaku-writer")
	}
	return nil
}

// start starts a child process that stopAll stops.
func (b *bench) start(name, bin string, args []string, env ...string) (*child, error) {
	p, err := start(b.dir, name, bin, args, env...)
	if err != nil {
		return nil, err
	}
	b.cleanups = append(b.cleanups, p.stop)
	return p, nil
}

// stopAll runs the cleanups: it stops the processes in the reverse order of their start
// and drops the database.
func (b *bench) stopAll() error {
	var errs []error
	for i := len(b.cleanups) - 1; i >= 0; i-- {
		errs = append(errs, b.cleanups[i]())
	}
	b.cleanups = nil
	return errors.Join(errs...)
}

func (b *bench) progress(format string, args ...any) {
	fmt.Fprintf(b.log, "%s "+format+"\n", append([]any{time.Now().Format("15:04:05")}, args...)...)
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
