package reliability

import (
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"kohaku/testsupport/proc"
)

// process is a kohaku-receiver or kohaku-writer run by a test. The test's end kills it if
// it still runs, and shows its log when the test failed.
type process struct {
	*proc.Process
	addr  string // receiver: the collector's host:port
	admin string // host:port of /healthz, /readyz and /metrics
}

// start runs bin with args and env added to the test's environment without its KOHAKU_
// variables, which would change what the scenario runs. admin is the address of its admin
// endpoints when known in advance; a receiver logs it (waitListening).
func start(t *testing.T, name string, bin *proc.Binary, admin string, env []string, args ...string) *process {
	t.Helper()
	cmd := exec.Command(bin.Path(t), args...)
	cmd.Env = append(proc.CleanEnv("KOHAKU_LOG_FORMAT=json"), env...)
	return &process{Process: proc.Start(t, name, cmd), admin: admin}
}

// waitListening waits for the receiver's "listening" log line and takes its addresses.
func (p *process) waitListening(t *testing.T, timeout time.Duration) {
	t.Helper()
	var l struct {
		Addr  string `json:"addr"`
		Admin string `json:"admin_addr"`
	}
	if err := p.WaitLog("listening", &l, timeout); err != nil {
		t.Fatal(err)
	}
	p.addr, p.admin = l.Addr, l.Admin
}

// get returns the status and body of an admin endpoint.
func (p *process) get(path string) (int, string, error) {
	return proc.Get("http://" + p.admin + path)
}

// waitReady waits until /readyz answers 200.
func (p *process) waitReady(t *testing.T, timeout time.Duration) {
	t.Helper()
	if err := p.WaitHTTP("http://"+p.admin+"/readyz", timeout); err != nil {
		t.Fatal(err)
	}
}

// rss returns the resident memory of the process in bytes, from /proc.
func (p *process) rss() (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.Pid()))
	if err != nil {
		return 0, fmt.Errorf("memory of %s: %w", p.Name(), err)
	}
	for line := range strings.Lines(string(b)) {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			if err != nil {
				return 0, fmt.Errorf("memory of %s: VmRSS %q: %w", p.Name(), rest, err)
			}
			return kb << 10, nil
		}
	}
	return 0, fmt.Errorf("memory of %s: no VmRSS in /proc status", p.Name())
}

// metric returns the value of the first sample of the metric name (without labels) in
// the process's /metrics.
func (p *process) metric(name string) (float64, error) {
	code, body, err := p.get("/metrics")
	if err != nil {
		return 0, err
	}
	if code != http.StatusOK {
		return 0, fmt.Errorf("%s /metrics: %d", p.Name(), code)
	}
	for line := range strings.Lines(body) {
		if rest, ok := strings.CutPrefix(line, name+" "); ok {
			return strconv.ParseFloat(strings.TrimSpace(rest), 64)
		}
	}
	return 0, fmt.Errorf("%s /metrics has no %s", p.Name(), name)
}
