// Command kohaku-writer moves Sora's stats from the KOHAKU JetStream stream into
// PostgreSQL (DESIGN.md). Subcommands:
//
//	run                            (default) write the stream into the database, exactly once
//	migrate                        apply the schema migrations and exit
//	replay --since T [--until T]   write a period of the stream again (RFC 3339 times,
//	                               or durations ago such as 2h)
//	import FILE...                 write Sora's rtc_stats.jsonl logs into the database
//	                               (plain, .gz, or - for stdin)
//	analyze --since T [--until T]  recompute the issue intervals and scores of a period
//	                               from the stored rows (times as for replay)
//
// While run writes, it also analyzes the newest rows every KOHAKU_ANALYZE_EVERY (see
// analyze.go), so that issues follow new reports within a minute.
//
// All configuration is environment variables with the KOHAKU_ prefix; -h lists them.
// -version, before or after the subcommand, prints the version and the commit.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/kelseyhightower/envconfig"

	"kohaku/pkg/config"
	"kohaku/pkg/logging"
	"kohaku/schema"
	"kohaku/writer/embedded"
	"kohaku/writer/internal/ingest"
)

// Config is the writer's configuration, read from KOHAKU_* environment variables. The
// consumer's and the schema's parts are their packages' Options, which carry the tags.
type Config struct {
	config.NATS
	config.Log

	DatabaseURL string `split_words:"true" default:"postgres://postgres@127.0.0.1:5432/kohaku?sslmode=disable" desc:"PostgreSQL database to write; created at start when missing and KOHAKU_MIGRATE is true"`
	AdminListen string `split_words:"true" default:":5892" desc:"address of /healthz, /readyz and /metrics"`
	// Pprof serves Go's profiles on the admin address (admin.WithPprof).
	Pprof bool `default:"false" desc:"serve Go's runtime profiles under /debug/pprof/ on the admin address (CPU profiles and traces of up to 60s)"`

	ingest.Options // KOHAKU_BATCH_SIZE, KOHAKU_BATCH_WAIT, KOHAKU_MAX_ACK_PENDING, KOHAKU_ACK_WAIT, KOHAKU_WRITE_TIMEOUT, KOHAKU_BATCH_MAX_BYTES, KOHAKU_BATCH_MAX_ROWS, KOHAKU_WRITE_CONNECTIONS

	Migrate bool `default:"true" desc:"apply the schema migrations at start"`

	AnalyzeEvery time.Duration `split_words:"true" default:"30s" desc:"how often run recomputes the issue intervals and scores from the earliest report it stored since, however old, up to now; 0 turns it off (kohaku-writer analyze still recomputes any period)"`

	EmbeddedNATS       bool   `envconfig:"EMBEDDED_NATS" default:"false" desc:"run the JetStream server inside the writer (single machine); KOHAKU_NATS_URL is then not used"`
	EmbeddedNATSListen string `envconfig:"EMBEDDED_NATS_LISTEN" default:"127.0.0.1:4222" desc:"client address of the embedded JetStream server"`
	EmbeddedNATSDir    string `envconfig:"EMBEDDED_NATS_DIR" default:"kohaku-nats" desc:"directory of the embedded JetStream server's data"`
	// A power loss of the one machine is what the single-machine mode must survive: see
	// README.md, "Durability", for the measured cost.
	EmbeddedNATSSync embedded.Sync `envconfig:"EMBEDDED_NATS_SYNC" default:"always" desc:"when the embedded JetStream server syncs stored messages to disk: always (before each acknowledgement, survives a power loss) or an interval such as 2m (nats-server's default; a power loss loses up to that much)"`

	Timescale // KOHAKU_CHUNK_INTERVAL, KOHAKU_COMPRESS_AFTER, KOHAKU_RETAIN_FOR
}

// Timescale is schema.Options under a name of its own: Config embeds ingest.Options, and two
// embedded fields cannot both be named Options.
type Timescale = schema.Options

// Validate reports every invalid field: those of each part, and those that involve several.
func (c Config) Validate() error {
	errs := []error{c.NATS.Validate(), c.Timescale.Validate()}
	if c.DatabaseURL == "" {
		errs = append(errs, errors.New("KOHAKU_DATABASE_URL is empty"))
	}
	errs = append(errs, c.Options.Validate())
	if c.CompressAfter <= c.StreamMaxAge {
		// A redelivered or replayed message would land in a compressed chunk, where the
		// duplicate check and the insert are slow, or fail on older TimescaleDB.
		errs = append(errs, fmt.Errorf("KOHAKU_COMPRESS_AFTER (%s) must be longer than KOHAKU_STREAM_MAX_AGE (%s): every message still in the stream must land in an uncompressed chunk",
			c.CompressAfter, c.StreamMaxAge))
	}
	if c.AnalyzeEvery < 0 {
		errs = append(errs, fmt.Errorf("KOHAKU_ANALYZE_EVERY must not be negative, got %s", c.AnalyzeEvery))
	}
	if c.EmbeddedNATS && c.EmbeddedNATSDir == "" {
		errs = append(errs, errors.New("KOHAKU_EMBEDDED_NATS_DIR is empty"))
	}
	if c.EmbeddedNATS && c.StreamReplicas != 1 {
		errs = append(errs, fmt.Errorf("KOHAKU_STREAM_REPLICAS must be 1 with the embedded JetStream server, got %d", c.StreamReplicas))
	}
	return errors.Join(errs...)
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

const usage = `Usage: kohaku-writer [-version] [run | migrate | replay --since T [--until T] | import FILE... | analyze --since T [--until T]]

  run              (default) write the KOHAKU stream into the database, exactly once
  migrate          apply the schema migrations and exit
  replay           write the stream's messages from --since (and up to --until) again;
                   a time in RFC 3339, e.g. 2025-01-31T09:00:00Z, or a duration ago, e.g. 2h
  import FILE...   write Sora's rtc_stats.jsonl logs into the database (plain, .gz, or - for stdin)
  analyze          recompute the issue intervals and scores of the rows stored from --since (up to
                   --until, default now), replacing what was there; times as for replay
  -version         print the version and the commit it was built from, and exit

`

// run runs the subcommand in args and returns the exit code.
func run(args []string, stdout, stderr io.Writer) int {
	cmd := "run"
	if len(args) > 0 && args[0] != "" && args[0][0] != '-' {
		cmd, args = args[0], args[1:]
	}
	var cfg Config
	fs := flag.NewFlagSet("kohaku-writer "+cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stdout, usage)
		if cmd == "replay" || cmd == "analyze" {
			fs.SetOutput(stdout)
			fs.PrintDefaults()
			fmt.Fprintln(stdout)
		}
		tw := tabwriter.NewWriter(stdout, 1, 0, 4, ' ', 0)
		envconfig.Usagef(config.Prefix, &cfg, tw, envconfig.DefaultTableFormat)
		tw.Flush()
	}
	version := fs.Bool("version", false, "print the version and the commit it was built from, and exit")
	var since, until string
	if cmd == "analyze" {
		fs.StringVar(&since, "since", "", "analyze the rows stored with a time at or after this: RFC 3339 (2025-01-31T09:00:00Z) or a duration ago (2h, 90m); required")
		fs.StringVar(&until, "until", "", "analyze the rows stored with a time up to this: RFC 3339 or a duration ago; default: now")
	}
	if cmd == "replay" {
		fs.StringVar(&since, "since", "", "replay messages that arrived at or after this time: RFC 3339 (2025-01-31T09:00:00Z) or a duration ago (2h, 90m); required")
		fs.StringVar(&until, "until", "", "replay messages that arrived up to this time: RFC 3339 or a duration ago; default: the stream's last message")
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if *version {
		fmt.Fprintln(stdout, logging.ReadBuild().Line("kohaku-writer"))
		return 0
	}
	switch {
	case cmd == "import" && fs.NArg() == 0:
		fmt.Fprintf(stderr, "kohaku-writer import: no FILE to import\n\n%s", usage)
		return 2
	case cmd != "import" && fs.NArg() > 0:
		fmt.Fprintf(stderr, "kohaku-writer: unexpected arguments %q\n\n%s", fs.Args(), usage)
		return 2
	}
	if cmd != "run" && cmd != "migrate" && cmd != "replay" && cmd != "import" && cmd != "analyze" {
		fmt.Fprintf(stderr, "kohaku-writer: unknown subcommand %q\n\n%s", cmd, usage)
		return 2
	}

	if err := envconfig.Process(config.Prefix, &cfg); err != nil {
		fmt.Fprintf(stderr, "kohaku-writer: configuration: %v\n", err)
		return 2
	}
	if err := cfg.Validate(); err != nil {
		fmt.Fprintf(stderr, "kohaku-writer: configuration:\n%v\n", err)
		return 2
	}
	log, err := logging.New(stderr, "kohaku-writer", cfg.LogFormat, cfg.LogLevel)
	if err != nil {
		fmt.Fprintf(stderr, "kohaku-writer: configuration: %v\n", err)
		return 2
	}

	// SIGTERM (docker stop, systemd) and SIGINT end the work gracefully: the batch in
	// hand is committed and acknowledged first.
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()

	switch cmd {
	case "migrate":
		err = runMigrate(ctx, cfg, log)
	case "replay":
		var r replayRange
		if r, err = parseRange(since, until, time.Now()); err != nil {
			fmt.Fprintf(stderr, "kohaku-writer replay: %v\n", err)
			return 2
		}
		err = runReplay(ctx, cfg, r, log, stderr)
	case "analyze":
		var r replayRange
		if r, err = parseRange(since, until, time.Now()); err != nil {
			fmt.Fprintf(stderr, "kohaku-writer analyze: %v\n", err)
			return 2
		}
		err = runAnalyze(ctx, cfg, r, log, stderr)
	case "import":
		var rejected bool
		if rejected, err = runImport(ctx, cfg, fs.Args(), log, stderr); err == nil && rejected {
			return 1 // each rejection is on stderr already
		}
	default:
		err = runWriter(ctx, cfg, log)
	}
	switch {
	case err != nil && ctx.Err() != nil && errors.Is(err, context.Canceled):
		// Ctrl-C is how a person stops a replay or an import early: no failure. It
		// still did not finish, which the exit status tells a script.
		log.Info(cmd + " interrupted; what was written stays, and running it again is safe")
		return 1
	case err != nil:
		log.Error(cmd+" failed", "err", err)
		return 1
	}
	return 0
}
