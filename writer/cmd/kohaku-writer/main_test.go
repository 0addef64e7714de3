package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"kohaku/pkg/stream"
	"kohaku/testsupport/proc"
	"kohaku/testsupport/testenv"
	"kohaku/writer/internal/writertest"
)

// writerBin is kohaku-writer, built once for the tests that run it as a process.
var writerBin = &proc.Binary{Name: "kohaku-writer", Pkg: "."}

func TestMain(m *testing.M) {
	code := writertest.Run(m)
	if err := writerBin.Remove(); err != nil {
		fmt.Fprintln(os.Stderr, err)
	}
	os.Exit(code)
}

// process is a kohaku-writer process run by a test.
type process struct {
	*proc.Process
	admin string
}

// startWriter runs kohaku-writer with args and the environment env (KOHAKU_ variables of
// the test's own environment are dropped); the test's end kills it if it still runs.
func startWriter(t *testing.T, env map[string]string, args ...string) *process {
	t.Helper()
	return startWriterInput(t, env, nil, args...)
}

// startWriterInput is startWriter with stdin as the process's standard input.
func startWriterInput(t *testing.T, env map[string]string, stdin io.Reader, args ...string) *process {
	t.Helper()
	admin := proc.FreeAddr(t)
	cmd := exec.Command(writerBin.Path(t), args...)
	cmd.Stdin = stdin
	cmd.Env = proc.CleanEnv("KOHAKU_ADMIN_LISTEN="+admin, "KOHAKU_LOG_FORMAT=json", "KOHAKU_BATCH_WAIT=50ms")
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	return &process{Process: proc.Start(t, "kohaku-writer", cmd), admin: admin}
}

// wait waits for the process to exit and returns its exit code.
func (p *process) wait(t *testing.T, timeout time.Duration) int {
	t.Helper()
	err := p.Wait(timeout)
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		return exit.ExitCode()
	}
	if err != nil {
		t.Fatal(err)
	}
	return 0
}

// get returns the status and body of an admin endpoint.
func (p *process) get(path string) (int, string, error) {
	return proc.Get("http://" + p.admin + path)
}

func (p *process) waitReady(t *testing.T) {
	t.Helper()
	if err := p.WaitHTTP("http://"+p.admin+"/readyz", 60*time.Second); err != nil {
		t.Fatal(err)
	}
}

func TestCrashedWriterLosesNothing(t *testing.T) {
	js := writertest.NewJetStream(t)
	db := writertest.EmptyDatabase(t) // the writer migrates it
	env := map[string]string{
		"KOHAKU_NATS_URL":     js.Server.URL(),
		"KOHAKU_DATABASE_URL": db,
		"KOHAKU_BATCH_SIZE":   "10",
		// Short: messages delivered to the killed writer come again soon.
		"KOHAKU_ACK_WAIT": "2s",
	}
	msgs := writertest.Messages(t, 300)
	want := writertest.Expect(t, msgs)

	first := startWriter(t, env)
	first.waitReady(t)
	pool := writertest.Pool(t, db)

	// A stream of messages, published while the writer writes and is killed.
	published := make(chan error, 1)
	go func() {
		for i, m := range msgs {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			_, err := js.JS.PublishMsg(ctx, writertest.NATSMsg(m, stream.MsgID(m.ExporterType, m.Body)))
			cancel()
			if err != nil {
				published <- fmt.Errorf("publish message %d: %w", i, err)
				return
			}
			time.Sleep(time.Millisecond) // a stream, not a burst
		}
		published <- nil
	}()
	testenv.Eventually(t, 60*time.Second, func() error {
		got, err := writertest.Count(context.Background(), pool)
		if err != nil {
			return err
		}
		if got["rtc_peer_connection_stats"] < 20 {
			return errors.New("the writer has not stored much yet")
		}
		return nil
	})
	if err := first.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	first.wait(t, 10*time.Second)
	select {
	case err := <-published:
		t.Logf("the publisher had finished when the writer was killed (%v): the crash was at the end of the stream", err)
		published <- err
	default:
	}

	second := startWriter(t, env)
	if err := <-published; err != nil {
		t.Fatal(err)
	}
	writertest.WaitCounts(t, pool, want, 60*time.Second)

	// SIGTERM: the writer finishes what it holds and exits cleanly.
	before := len(second.Output())
	if err := second.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := second.wait(t, 30*time.Second); code != 0 {
		t.Errorf("exit code after SIGTERM: %d, want 0\n%s", code, second.Output())
	}
	checkCleanStop(t, second.Output()[before:])
	if d := want.Diff(mustCount(t, pool)); d != "" {
		t.Errorf("after SIGTERM: %s", d)
	}
}

func mustCount(t *testing.T, pool *pgxpool.Pool) writertest.Counts {
	t.Helper()
	got, err := writertest.Count(context.Background(), pool)
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func TestEmbeddedJetStream(t *testing.T) {
	db := writertest.Database(t)
	listen := proc.FreeAddr(t)
	p := startWriter(t, map[string]string{
		"KOHAKU_EMBEDDED_NATS":        "true",
		"KOHAKU_EMBEDDED_NATS_LISTEN": listen,
		"KOHAKU_EMBEDDED_NATS_DIR":    t.TempDir(),
		"KOHAKU_DATABASE_URL":         db,
	})
	p.waitReady(t)

	nc := writertest.Connect(t, "nats://"+listen)
	msgs := writertest.Messages(t, 20)
	for _, m := range msgs {
		nc.Publish(t, m)
	}
	pool := writertest.Pool(t, db)
	writertest.WaitCounts(t, pool, writertest.Expect(t, msgs), 60*time.Second)

	code, body, err := p.get("/metrics")
	if err != nil || code != http.StatusOK {
		t.Fatalf("/metrics: %d, %v", code, err)
	}
	for _, name := range []string{"kohaku_writer_rows_total", "kohaku_writer_messages_total", "kohaku_writer_copy_seconds",
		"kohaku_writer_batch_messages", "kohaku_writer_consumer_pending_messages", "kohaku_writer_database_up",
		`kohaku_writer_copy_seconds_count{table="sora_connection"}`} { // the upsert's time
		if !strings.Contains(body, name) {
			t.Errorf("/metrics lacks %s", name)
		}
	}
	if code, _, err := p.get("/healthz"); err != nil || code != http.StatusOK {
		t.Errorf("/healthz: %d, %v", code, err)
	}
	before := len(p.Output())
	p.Signal(syscall.SIGTERM)
	if code := p.wait(t, 30*time.Second); code != 0 {
		t.Errorf("exit code after SIGTERM: %d, want 0", code)
	}
	checkCleanStop(t, p.Output()[before:])
}

// checkCleanStop checks what the writer logged after it was asked to stop: nothing above
// INFO, since a stop that goes as planned is no trouble, and each line names the service.
func checkCleanStop(t *testing.T, out string) {
	t.Helper()
	if !strings.Contains(out, `"msg":"kohaku-writer stopped"`) {
		t.Errorf("no stop logged:\n%s", out)
	}
	for line := range strings.Lines(out) {
		var l struct{ Level, Service string }
		if err := json.Unmarshal([]byte(line), &l); err != nil || l.Service != "kohaku-writer" {
			t.Errorf("not a JSON log line of kohaku-writer (%v): %s", err, line)
		}
		if l.Level != "INFO" && l.Level != "DEBUG" {
			t.Errorf("logged at %s while stopping: %s", l.Level, line)
		}
	}
}

func TestEmbeddedJetStreamPortTaken(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	p := startWriter(t, map[string]string{
		"KOHAKU_EMBEDDED_NATS":        "true",
		"KOHAKU_EMBEDDED_NATS_LISTEN": l.Addr().String(),
		"KOHAKU_EMBEDDED_NATS_DIR":    t.TempDir(),
		"KOHAKU_DATABASE_URL":         "postgres://postgres@127.0.0.1:1/none?sslmode=disable",
	})
	if code := p.wait(t, 30*time.Second); code != 1 {
		t.Errorf("exit code %d, want 1", code)
	}
	if out := p.Output(); !strings.Contains(out, l.Addr().String()+" is taken") {
		t.Errorf("output does not say that the port is taken:\n%s", out)
	}
}

func TestReplayCommand(t *testing.T) {
	js := writertest.NewJetStream(t)
	msgs := writertest.Messages(t, 30)
	since := time.Now().Add(-time.Minute)
	for _, m := range msgs {
		js.Publish(t, m)
	}
	db := writertest.Database(t) // as if restored from a backup older than the stream
	p := startWriter(t, map[string]string{"KOHAKU_NATS_URL": js.Server.URL(), "KOHAKU_DATABASE_URL": db},
		"replay", "--since", since.Format(time.RFC3339))
	if code := p.wait(t, 60*time.Second); code != 0 {
		t.Fatalf("replay exit code %d, want 0\n%s", code, p.Output())
	}
	if out := p.Output(); !strings.Contains(out, "replay: 30 messages") {
		t.Errorf("no final progress line for 30 messages:\n%s", out)
	}
	writertest.WaitCounts(t, writertest.Pool(t, db), writertest.Expect(t, msgs), time.Second)
	rows := checkReplayOutput(t, p.Output(), 0)

	// Again, from a duration ago: every row is there already.
	p = startWriter(t, map[string]string{"KOHAKU_NATS_URL": js.Server.URL(), "KOHAKU_DATABASE_URL": db}, "replay", "--since", "5m")
	if code := p.wait(t, 60*time.Second); code != 0 {
		t.Fatalf("replay --since 5m exit code %d, want 0\n%s", code, p.Output())
	}
	checkReplayOutput(t, p.Output(), rows)
}

// checkReplayOutput checks replay's output when stderr is no terminal: JSON log lines that
// name the service, no progress line, and a summary line last, of 30 messages with
// present of its rows already present. It returns the rows of the summary.
func checkReplayOutput(t *testing.T, out string, present int) (rows int) {
	t.Helper()
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	for _, line := range lines[:len(lines)-1] {
		var l struct{ Service string }
		if err := json.Unmarshal([]byte(line), &l); err != nil || l.Service != "kohaku-writer" {
			t.Errorf("not a JSON log line of kohaku-writer (%v): %s", err, line)
		}
	}
	summary := lines[len(lines)-1]
	var msgs, dup, dead int
	var rate float64
	var elapsed string
	if _, err := fmt.Sscanf(summary, "replay: %d messages, %d rows (%d already present), %d dead letters, %f msg/s, %s in all",
		&msgs, &rows, &dup, &dead, &rate, &elapsed); err != nil {
		t.Fatalf("summary %q: %v\n%s", summary, err, out)
	}
	if msgs != 30 || rows == 0 || dup != present || dead != 0 {
		t.Errorf("summary %q, want 30 messages and %d rows already present", summary, present)
	}
	if present > 0 && dup != rows {
		t.Errorf("summary %q: want every row already present", summary)
	}
	return rows
}

func TestVersionFlag(t *testing.T) {
	for _, args := range [][]string{{"-version"}, {"replay", "-version"}, {"-version", "replay"}, {"import", "--version"}} {
		out, err := exec.Command(writerBin.Path(t), args...).CombinedOutput()
		if err != nil {
			t.Errorf("%q: %v\n%s", args, err, out)
			continue
		}
		// The tests build without VCS stamping; pkg/logging tests the line with a commit.
		if !bytes.HasPrefix(out, []byte("kohaku-writer version ")) || !bytes.Contains(out, []byte(", commit ")) ||
			bytes.Count(out, []byte("\n")) != 1 {
			t.Errorf("%q printed %q, want one line \"kohaku-writer version ..., commit ...\"", args, out)
		}
	}
}

func TestMigrateCommand(t *testing.T) {
	db := writertest.EmptyDatabase(t)
	for range 2 { // the second run finds nothing to do
		p := startWriter(t, map[string]string{"KOHAKU_DATABASE_URL": db}, "migrate")
		if code := p.wait(t, 60*time.Second); code != 0 {
			t.Fatalf("migrate exit code %d, want 0\n%s", code, p.Output())
		}
	}
	if d := writertest.Expect(t, nil).Diff(mustCount(t, writertest.Pool(t, db))); d != "" {
		t.Errorf("after migrate: %s", d)
	}
}
