package deploytest

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"kohaku/testsupport/testenv"
)

// process is a program that a test runs, with its output kept for failure messages.
type process struct {
	name string
	cmd  *exec.Cmd
	out  *lockedBuffer
	done chan struct{} // closed when the program has ended
	err  error         // its exit error, once done is closed
}

// lockedBuffer collects a program's stdout and stderr; the test reads it while the program writes.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// start runs cmd and makes sure it is gone when the test ends: a program still running
// then is killed, and its output is logged when the test failed.
func start(t *testing.T, name string, cmd *exec.Cmd) *process {
	t.Helper()
	p := &process{name: name, cmd: cmd, out: &lockedBuffer{}, done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = p.out, p.out
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.kill()
		if t.Failed() {
			t.Logf("output of %s:\n%s", name, p.out.String())
		}
	})
	return p
}

// kill ends the program at once (SIGKILL) and waits for it.
func (p *process) kill() {
	select {
	case <-p.done:
		return
	default:
	}
	p.cmd.Process.Kill()
	<-p.done
}

// stop sends sig and waits up to timeout for the program to end; it returns the exit error.
func (p *process) stop(t *testing.T, sig os.Signal, timeout time.Duration) error {
	t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
		t.Fatalf("signal %s: %v", p.name, err)
	}
	select {
	case <-p.done:
		return p.err
	case <-time.After(timeout):
		t.Fatalf("%s still running %s after %s", p.name, timeout, sig)
		return nil
	}
}

// exited reports whether the program has ended.
func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// freeAddr returns a loopback address with a port that was free a moment ago, for
// programs whose address must be known before they start (HAProxy's backends).
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// waitReady polls url until it answers 200, failing the test when p ends first or after timeout.
func waitReady(t *testing.T, p *process, url string, timeout time.Duration) {
	t.Helper()
	client := &http.Client{Timeout: 2 * time.Second}
	testenv.Eventually(t, timeout, func() error {
		if p.exited() {
			t.Fatalf("%s ended before %s answered: %v\n%s", p.name, url, p.err, p.out.String())
		}
		resp, err := client.Get(url)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("%s: %s", url, resp.Status)
		}
		return nil
	})
}

// buildReceiver builds kohaku-receiver into a temporary directory and returns its path.
func buildReceiver(t *testing.T) string {
	t.Helper()
	return build(t, "kohaku-receiver", "receiver/cmd/kohaku-receiver")
}

// buildWriter builds kohaku-writer into a temporary directory and returns its path.
func buildWriter(t *testing.T) string {
	t.Helper()
	return build(t, "kohaku-writer", "writer/cmd/kohaku-writer")
}

// build builds the main package at pkg, relative to the checkout, into a temporary
// directory and returns the path of the program.
func build(t *testing.T, name, pkg string) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), name)
	out, err := exec.Command("go", "build", "-o", bin, filepath.Join(root, pkg)).CombinedOutput()
	if err != nil {
		t.Fatalf("build %s: %v\n%s", name, err, out)
	}
	return bin
}

// lookPath returns the path of a program the test needs; without it the test is skipped,
// or fails in CI, where .ci/run installs it. from says where the program comes from.
func lookPath(t *testing.T, program, from string) string {
	t.Helper()
	path, err := exec.LookPath(program)
	if err != nil {
		testenv.Unavailable(t, fmt.Sprintf("%s (%s)", program, from), err)
	}
	return path
}

// cleanEnv returns the environment without KOHAKU_ variables (other than the tests' own
// KOHAKU_TEST_), so that a developer's settings do not change what a test runs.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "KOHAKU_") && !strings.HasPrefix(kv, "KOHAKU_TEST_") {
			continue
		}
		env = append(env, kv)
	}
	return env
}

// processGone reports whether pid no longer exists.
func processGone(pid int) bool {
	return errors.Is(syscall.Kill(pid, 0), syscall.ESRCH)
}
