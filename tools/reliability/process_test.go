package reliability

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"kohaku/testsupport/testenv"
)

// process is a kohaku-receiver or kohaku-writer run by a test. The test's end kills it if
// it still runs, and shows its log when the test failed.
type process struct {
	name  string
	cmd   *exec.Cmd
	addr  string // receiver: the collector's host:port
	admin string // host:port of /healthz, /readyz and /metrics

	mu        sync.Mutex
	log       bytes.Buffer
	listening chan struct{} // closed when the receiver logged its addresses
	done      chan struct{} // closed when the process exited
	err       error         // of Wait, once done is closed
}

// start runs bin with args and env added to the test's environment without its KOHAKU_
// variables, which would change what the scenario runs. admin is the address of its admin
// endpoints when known in advance; a receiver logs it.
func start(t *testing.T, name, bin, admin string, env []string, args ...string) *process {
	t.Helper()
	p := &process{name: name, admin: admin, listening: make(chan struct{}), done: make(chan struct{})}
	p.cmd = exec.Command(bin, args...)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "KOHAKU_") {
			p.cmd.Env = append(p.cmd.Env, kv)
		}
	}
	p.cmd.Env = append(p.cmd.Env, "KOHAKU_LOG_FORMAT=json")
	p.cmd.Env = append(p.cmd.Env, env...)
	out, err := p.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	p.cmd.Stdout = p.cmd.Stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go p.read(out)
	t.Cleanup(func() {
		p.kill(t)
		if t.Failed() {
			t.Logf("%s %v log:\n%s", name, args, p.logs())
		}
	})
	return p
}

// read keeps the process's log and notices the receiver's "listening" line.
func (p *process) read(out io.Reader) {
	sc := bufio.NewScanner(out)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var line struct {
			Msg   string `json:"msg"`
			Addr  string `json:"addr"`
			Admin string `json:"admin_addr"`
		}
		p.mu.Lock()
		p.log.Write(sc.Bytes())
		p.log.WriteByte('\n')
		if json.Unmarshal(sc.Bytes(), &line) == nil && line.Msg == "listening" && line.Addr != "" {
			p.addr, p.admin = line.Addr, line.Admin
			close(p.listening)
		}
		p.mu.Unlock()
	}
	p.err = p.cmd.Wait()
	close(p.done)
}

func (p *process) logs() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.log.String()
}

// exited reports whether the process has ended.
func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// kill ends the process with SIGKILL, as a crash or the OOM killer would, and waits for it.
func (p *process) kill(t *testing.T) {
	t.Helper()
	if p.exited() {
		return
	}
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil && !errors.Is(err, os.ErrProcessDone) {
		t.Errorf("kill %s: %v", p.name, err)
	}
	<-p.done
}

// stop ends the process with SIGTERM and fails the test unless it exits cleanly in time.
func (p *process) stop(t *testing.T) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatalf("SIGTERM %s: %v", p.name, err)
	}
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		t.Fatalf("%s did not exit within 30s of SIGTERM", p.name)
	}
	if p.err != nil {
		t.Fatalf("%s after SIGTERM: %v", p.name, p.err)
	}
}

// wait waits for a process that ends by itself (a replay) and fails the test unless it
// exits with 0.
func (p *process) wait(t *testing.T, timeout time.Duration) {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(timeout):
		t.Fatalf("%s did not finish within %s", p.name, timeout)
	}
	if p.err != nil {
		t.Fatalf("%s: %v\n%s", p.name, p.err, p.logs())
	}
}

// get returns the status and body of an admin endpoint.
func (p *process) get(path string) (int, string, error) {
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get("http://" + p.admin + path)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

// waitReady waits until /readyz answers 200.
func (p *process) waitReady(t *testing.T, timeout time.Duration) {
	t.Helper()
	testenv.Eventually(t, timeout, func() error {
		if p.exited() {
			t.Fatalf("%s exited: %v\n%s", p.name, p.err, p.logs())
		}
		code, body, err := p.get("/readyz")
		if err == nil && code != http.StatusOK {
			err = fmt.Errorf("%s /readyz: %d %s", p.name, code, strings.TrimSpace(body))
		}
		return err
	})
}

// rss returns the resident memory of the process in bytes, from /proc.
func (p *process) rss() (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
	if err != nil {
		return 0, fmt.Errorf("memory of %s: %w", p.name, err)
	}
	for line := range strings.Lines(string(b)) {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			if err != nil {
				return 0, fmt.Errorf("memory of %s: VmRSS %q: %w", p.name, rest, err)
			}
			return kb << 10, nil
		}
	}
	return 0, fmt.Errorf("memory of %s: no VmRSS in /proc status", p.name)
}

// metric returns the value of the first sample of the metric name (without labels) in
// the process's /metrics.
func (p *process) metric(name string) (float64, error) {
	code, body, err := p.get("/metrics")
	if err != nil {
		return 0, err
	}
	if code != http.StatusOK {
		return 0, fmt.Errorf("%s /metrics: %d", p.name, code)
	}
	for line := range strings.Lines(body) {
		if rest, ok := strings.CutPrefix(line, name+" "); ok {
			return strconv.ParseFloat(strings.TrimSpace(rest), 64)
		}
	}
	return 0, fmt.Errorf("%s /metrics has no %s", p.name, name)
}

// freeAddr returns a loopback address whose port was free a moment ago.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}
