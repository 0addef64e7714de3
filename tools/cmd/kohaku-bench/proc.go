package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"kohaku/testsupport/proc"
)

// child is a child process of the benchmark: a service under test, a baseline or the NATS
// server. Its output goes to a log file in the work directory, shown when it fails.
type child struct {
	*proc.Process
	log string

	stopped bool // stop was called: a second call reports nothing
}

// start starts bin with args and extra environment variables; output goes to dir/name.log.
func start(dir, name, bin string, args []string, env ...string) (*child, error) {
	logPath := filepath.Join(dir, name+".log")
	f, err := os.Create(logPath)
	if err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	// The child writes to a descriptor of its own: the file can be closed once it started.
	defer f.Close()
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = f, f
	// Its own process group: a Ctrl-C in the terminal reaches the benchmark, which then
	// stops the children in order.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	p, err := proc.Spawn(name, cmd)
	if err != nil {
		return nil, err
	}
	return &child{Process: p, log: logPath}, nil
}

// stop sends SIGTERM and waits up to 30 s for the process to exit, then kills it. It
// reports an unclean exit once.
func (c *child) stop() error {
	if c.stopped {
		return nil
	}
	c.stopped = true
	return c.withLog(c.Stop(syscall.SIGTERM, 30*time.Second))
}

// withLog adds the tail of the log to err, if any.
func (c *child) withLog(err error) error {
	if err != nil {
		return fmt.Errorf("%w; its log:\n%s", err, c.tail())
	}
	return nil
}

// tail returns the last lines of the process's log.
func (c *child) tail() string {
	b, err := os.ReadFile(c.log)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > 20 {
		lines = lines[len(lines)-20:]
	}
	return "    " + strings.Join(lines, "\n    ")
}

// waitHTTP waits until GET url answers with a 2xx status, or the process exits, or
// timeout passes.
func (c *child) waitHTTP(url string, timeout time.Duration) error {
	return c.withLog(c.WaitHTTP(url, timeout))
}

// waitTCP waits until addr accepts connections.
func (c *child) waitTCP(addr string, timeout time.Duration) error {
	return c.withLog(c.WaitTCP(addr, timeout))
}

// resetPeak starts a new peak-RSS measurement: writing 5 to clear_refs resets VmHWM to
// the current RSS (Linux 4.0 and later, see proc(5)).
func (c *child) resetPeak() {
	os.WriteFile("/proc/"+strconv.Itoa(c.Pid())+"/clear_refs", []byte("5"), 0)
}

// peakRSS returns the process's peak resident set size (VmHWM) since it started or since
// the last resetPeak, in MiB.
func (c *child) peakRSS() (float64, error) {
	return procStatus(c.Pid(), "VmHWM")
}

// procStatus returns a kB field of /proc/pid/status in MiB.
func procStatus(pid int, field string) (float64, error) {
	f, err := os.Open("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		name, rest, ok := strings.Cut(sc.Text(), ":")
		if !ok || name != field {
			continue
		}
		kb, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 64)
		if err != nil {
			return 0, fmt.Errorf("/proc/%d/status %s: %w", pid, field, err)
		}
		return kb / 1024, nil
	}
	return 0, fmt.Errorf("/proc/%d/status has no %s", pid, field)
}

// errStopped tells that the benchmark was interrupted.
var errStopped = errors.New("interrupted")

// sleepCtx waits d or until ctx ends.
func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return errStopped
	case <-t.C:
		return nil
	}
}

// cpuTime returns the user and system CPU time that process pid used so far.
func cpuTime(pid int) (time.Duration, error) {
	own, _, err := cpuTimes(pid)
	return own, err
}

// cpuTimes returns the user and system CPU time that process pid used so far, and that of
// its children that it has waited for, from /proc/pid/stat (fields 14 to 17, in clock
// ticks of 1/100 s on Linux).
func cpuTimes(pid int) (own, children time.Duration, err error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, 0, err
	}
	// The command name, field 2, may hold spaces: count fields after its closing ")".
	s := string(b)
	fs := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(fs) < 15 {
		return 0, 0, fmt.Errorf("/proc/%d/stat: too few fields", pid)
	}
	var ticks [4]int64
	for k := range ticks {
		if ticks[k], err = strconv.ParseInt(fs[11+k], 10, 64); err != nil {
			return 0, 0, fmt.Errorf("/proc/%d/stat: %w", pid, err)
		}
	}
	const tick = 10 * time.Millisecond
	return time.Duration(ticks[0]+ticks[1]) * tick, time.Duration(ticks[2]+ticks[3]) * tick, nil
}

// postgresCPU returns the CPU time used so far by every process named postgres: the
// server's share of a phase, including its background work. Other clients of the same
// server are counted too. The processes that ended are counted by the postmaster, which
// waited for them: a CopyFrom round's backends end with its connections, an autovacuum
// worker with its table.
func postgresCPU() time.Duration {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return 0
	}
	var total time.Duration
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if !isPostgres(pid) {
			continue
		}
		if own, children, err := cpuTimes(pid); err == nil {
			total += own + children
		}
	}
	return total
}

// isPostgres reports whether process pid of this machine is a PostgreSQL process.
func isPostgres(pid int) bool {
	comm, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/comm")
	return err == nil && strings.TrimSpace(string(comm)) == "postgres"
}

// cpu returns the CPU time the process used so far, 0 when it cannot be read.
func (c *child) cpu() time.Duration {
	d, _ := cpuTime(c.Pid())
	return d
}

// selfCPU returns the CPU time this process used so far.
func selfCPU() time.Duration {
	d, _ := cpuTime(os.Getpid())
	return d
}

// schedTimes are the scheduler's times of processes: how long they ran and how long they
// were ready to run but waited for a core, from /proc/pid/schedstat.
type schedTimes struct {
	OnCPU   time.Duration `json:"on_cpu_ns"`
	Waiting time.Duration `json:"waiting_ns"` // ready to run, for a core
}

func (s schedTimes) add(o schedTimes) schedTimes {
	return schedTimes{s.OnCPU + o.OnCPU, s.Waiting + o.Waiting}
}

func (s schedTimes) sub(o schedTimes) schedTimes {
	return schedTimes{s.OnCPU - o.OnCPU, s.Waiting - o.Waiting}
}

// backendTimes returns the schedTimes of the PostgreSQL backends pids, which must run on
// this machine: a pid that is not a postgres process here counts nothing.
func backendTimes(pids []uint32) schedTimes {
	var total schedTimes
	for _, pid := range pids {
		if !isPostgres(int(pid)) {
			continue
		}
		b, err := os.ReadFile("/proc/" + strconv.Itoa(int(pid)) + "/schedstat")
		if err != nil {
			continue
		}
		if st, err := parseSchedstat(b); err == nil {
			total = total.add(st)
		}
	}
	return total
}

// parseSchedstat reads /proc/pid/schedstat: nanoseconds on a CPU, nanoseconds waiting on a
// run queue, and the number of time slices.
func parseSchedstat(b []byte) (schedTimes, error) {
	fs := strings.Fields(string(b))
	if len(fs) != 3 {
		return schedTimes{}, fmt.Errorf("schedstat %q: want 3 fields", b)
	}
	run, err1 := strconv.ParseInt(fs[0], 10, 64)
	wait, err2 := strconv.ParseInt(fs[1], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return schedTimes{}, fmt.Errorf("schedstat %q: %w", b, err)
	}
	return schedTimes{time.Duration(run), time.Duration(wait)}, nil
}
