// Command kohaku-bench measures the Kohaku pipeline on this machine and puts every figure
// next to the physical limit measured in the same run, so that the figures mean something
// on a small, noisy machine:
//
//  1. Receiver: requests per second and latency under the benchmark's own load generator
//     (a fixed number of connections and requests in flight, distinct bodies) against a
//     baseline served by this binary in a child process, under the same load: an HTTP
//     handler that reads the body, publishes it to JetStream and waits for the PubAck. For
//     the Chromium fixture and a multistream report of 100 received streams (about 200 KB),
//     each as the stats exporter over h2c (/collector, at each level) and as the stats
//     webhook over HTTP/1.1 (/stats-webhook, as many requests in flight, one per
//     connection). The receiver is reported as a share of the baseline; one extra line
//     repeats one body, which JetStream stores once.
//  2. Fsync: the receiver storing distinct bodies on a JetStream server that syncs every
//     write to disk before its PubAck (sync_interval: always) against one with
//     nats-server's default background sync, and the ratio of their rates.
//  3. Writer: rows per second draining a stream pre-filled with distinct simulated
//     messages, against pgx CopyFrom of the same rows into the same tables, in batches of
//     the same size, one transaction each, on as many connections; the rows in stream
//     order for the target, and once more in the writer's order (by connection) to show
//     the writer's own overhead.
//  4. End to end: at half the highest sustained rate, the time from a request's send time
//     to its row being committed, with the simulated Chromium reports and with them as
//     multistream reports.
//  5. Memory: peak RSS of the receiver and the writer in each phase.
//
// It needs the local PostgreSQL, as a user that may create databases and CHECKPOINT (a
// fresh database is created and dropped; every timed writer round starts from a
// checkpoint); JetStream is the embedded server, in a child process, with file storage in
// a temporary directory. It builds kohaku-receiver and kohaku-writer from the workspace
// unless given their paths.
// Results go to the terminal as a table and to a JSON file.
//
//	go run ./tools/cmd/kohaku-bench [--quick] [--phases receiver,fsync,writer,e2e] [--out bench.json]
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"
)

// options are the benchmark's flags.
type options struct {
	quick       bool
	out         string
	receiverBin string
	writerBin   string
	databaseURL string
	levels      []level
	warmup      time.Duration
	duration    time.Duration
	rounds      int
	messages    int
	batchSize   int
	e2eDuration time.Duration
	capDuration time.Duration
	pollEvery   time.Duration
	e2eLoad     float64
	phases      []string
}

// The phases, in the order they run.
const (
	phaseReceiver = "receiver"
	phaseFsync    = "fsync"
	phaseWriter   = "writer"
	phaseEndToEnd = "e2e"
)

func main() {
	if len(os.Args) > 1 {
		// The child processes that the benchmark starts from its own binary.
		sub := map[string]func([]string) error{
			"baseline-publish": runPublishBaseline,
			"nats":             runNATS,
		}
		if f, ok := sub[os.Args[1]]; ok {
			if err := f(os.Args[2:]); err != nil {
				fmt.Fprintf(os.Stderr, "kohaku-bench %s: %v\n", os.Args[1], err)
				os.Exit(1)
			}
			return
		}
	}
	o, err := parseFlags(os.Args[1:], os.Stderr)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	if err := run(ctx, o, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "kohaku-bench:", err)
		os.Exit(1)
	}
}

func parseFlags(args []string, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("kohaku-bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: kohaku-bench [flags]\n\nMeasures receiver, writer and end-to-end latency against baselines from the same run.\n\n")
		fs.PrintDefaults()
	}
	fs.BoolVar(&o.quick, "quick", false, "short run (fewer messages, shorter load runs) that still prints every figure")
	fs.StringVar(&o.out, "out", "", "JSON file for the results (default: kohaku-bench-<time>.json in the temporary directory)")
	fs.StringVar(&o.receiverBin, "receiver", "", "kohaku-receiver binary (default: built from the workspace)")
	fs.StringVar(&o.writerBin, "writer", "", "kohaku-writer binary (default: built from the workspace)")
	fs.StringVar(&o.databaseURL, "database-url", "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable",
		"PostgreSQL server to benchmark on; a fresh database is created there and dropped at the end")
	levels := fs.String("levels", "8x32,64x4", "receiver load levels over h2c, CONNECTIONSxSTREAMS, comma separated; over HTTP/1.1 as many requests in flight, one per connection")
	fs.DurationVar(&o.warmup, "warmup", 0, "load warm-up before each measurement (default 1s)")
	fs.DurationVar(&o.duration, "duration", 0, "load measurement per target and case, over all rounds (default 12s, --quick 3s)")
	fs.IntVar(&o.rounds, "rounds", 0, "receiver and fsync phases: rounds over all targets and cases, each measuring duration/rounds (default 3, --quick 1)")
	fs.IntVar(&o.messages, "messages", 0, "messages pre-filled for the writer phase (default 50000, --quick 5000)")
	fs.IntVar(&o.batchSize, "batch-size", 500, "writer batch size (KOHAKU_BATCH_SIZE), also the CopyFrom baseline's")
	fs.DurationVar(&o.e2eDuration, "e2e-duration", 0, "end-to-end run at half load (default 35s, longer than the writer's analysis period; --quick 5s)")
	fs.DurationVar(&o.capDuration, "capacity-duration", 0, "end to end: run at the estimated highest rate that measures it (default 35s, longer than the writer's analysis period; --quick 4s)")
	fs.Float64Var(&o.e2eLoad, "e2e-load", 0.5, "end to end: the rate as a share of the highest sustained rate (the issue's figure is at 0.5)")
	fs.DurationVar(&o.pollEvery, "poll-every", 10*time.Millisecond, "end to end: how often the database is polled for new rows")
	phases := fs.String("phases", "receiver,fsync,writer,e2e", "phases to run, comma separated; e2e needs receiver and writer")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	o.phases = strings.Split(*phases, ",")
	for _, p := range o.phases {
		if !slices.Contains([]string{phaseReceiver, phaseFsync, phaseWriter, phaseEndToEnd}, p) {
			fmt.Fprintf(stderr, "kohaku-bench: unknown phase %q\n", p)
			return o, errors.New("unknown phase")
		}
	}
	if slices.Contains(o.phases, phaseEndToEnd) && !(slices.Contains(o.phases, phaseReceiver) && slices.Contains(o.phases, phaseWriter)) {
		fmt.Fprintln(stderr, "kohaku-bench: phase e2e needs phases receiver and writer")
		return o, errors.New("invalid phases")
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "kohaku-bench: unexpected arguments %q\n", fs.Args())
		return o, errors.New("unexpected arguments")
	}
	var err error
	if o.levels, err = parseLevels(*levels); err != nil {
		fmt.Fprintln(stderr, "kohaku-bench:", err)
		return o, err
	}
	pick := func(v *time.Duration, full, quick time.Duration) {
		if *v == 0 {
			*v = full
			if o.quick {
				*v = quick
			}
		}
	}
	pick(&o.warmup, time.Second, time.Second)
	pick(&o.duration, 12*time.Second, 3*time.Second)
	pick(&o.e2eDuration, writerAnalyzeEvery+5*time.Second, 5*time.Second)
	pick(&o.capDuration, writerAnalyzeEvery+5*time.Second, 4*time.Second)
	if o.rounds == 0 {
		o.rounds = 3
		if o.quick {
			o.rounds = 1
		}
	}
	if o.messages == 0 {
		o.messages = 50000
		if o.quick {
			o.messages = 5000
		}
	}
	if o.batchSize < 1 || o.messages < o.batchSize || o.pollEvery <= 0 || o.e2eLoad <= 0 || o.rounds < 1 || o.duration/time.Duration(o.rounds) < time.Second || o.capDuration < 2*time.Second {
		fmt.Fprintln(stderr, "kohaku-bench: --batch-size must be at least 1 and at most --messages, --poll-every and --e2e-load positive, --duration at least 1s a round, --capacity-duration at least 2s")
		return o, errors.New("invalid flags")
	}
	if o.out == "" {
		o.out = fmt.Sprintf("%s/kohaku-bench-%s.json", os.TempDir(), time.Now().Format("20060102-150405"))
	}
	return o, nil
}
