package proc

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"sync"
	"testing"
	"time"
)

// Process is a program started by Spawn or Start.
type Process struct {
	name string
	cmd  *exec.Cmd
	out  output
	done chan struct{} // closed once the program has ended and its output is complete
	err  error         // the exit error, set before done is closed
}

// output keeps what the program writes; the caller reads it while the program writes.
type output struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (o *output) Write(b []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.buf.Write(b)
}

func (o *output) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.buf.String()
}

// Spawn starts cmd as the program called name (in messages) and returns at once. Each of
// cmd.Stdout and cmd.Stderr that is nil goes to the output that Output and WaitLog read;
// the caller sets them to send the output elsewhere, such as a log file.
func Spawn(name string, cmd *exec.Cmd) (*Process, error) {
	p := &Process{name: name, cmd: cmd, done: make(chan struct{})}
	// One writer for both: exec then gives the program one pipe for the two, so that what
	// it writes keeps its order.
	if cmd.Stdout == nil {
		cmd.Stdout = &p.out
	}
	if cmd.Stderr == nil {
		cmd.Stderr = &p.out
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// Start is Spawn for the test t: it fails t when the program cannot start. When the test
// ends, a program still running is killed, and the output is logged if the test failed.
func Start(t testing.TB, name string, cmd *exec.Cmd) *Process {
	t.Helper()
	p, err := Spawn(name, cmd)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := p.Kill(); err != nil {
			t.Error(err)
		}
		if t.Failed() {
			t.Logf("output of %s (%s):\n%s", name, cmd, p.Output())
		}
	})
	return p
}

// Name returns the name the program was started with.
func (p *Process) Name() string { return p.name }

// Pid returns the program's process id.
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// Output returns what the program wrote so far to the standard output and error that Spawn
// keeps.
func (p *Process) Output() string { return p.out.String() }

// Done returns a channel that is closed when the program has ended.
func (p *Process) Done() <-chan struct{} { return p.done }

// Exited reports whether the program has ended.
func (p *Process) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Err returns the exit error once the program has ended, as exec.Cmd.Wait gives it: nil
// for status 0, an *exec.ExitError otherwise. It returns nil while the program runs.
func (p *Process) Err() error {
	if !p.Exited() {
		return nil
	}
	return p.err
}

// Signal sends sig to the program. It fails with an error wrapping os.ErrProcessDone when
// the program has ended.
func (p *Process) Signal(sig os.Signal) error {
	if err := p.cmd.Process.Signal(sig); err != nil {
		return fmt.Errorf("signal %s: %w", p.name, err)
	}
	return nil
}

// Wait waits up to timeout for the program to end. It returns nil for exit status 0, and
// otherwise an error naming the program that wraps the exit error (an *exec.ExitError).
// When time runs out first it returns a *TimeoutError and leaves the program running.
func (p *Process) Wait(timeout time.Duration) error {
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-p.done:
		if p.err != nil {
			return fmt.Errorf("%s: %w", p.name, p.err)
		}
		return nil
	case <-t.C:
		return &TimeoutError{Name: p.name, What: "did not exit", Timeout: timeout}
	}
}

// Stop sends sig, as an operator would, and waits up to timeout for the program to end. It
// returns what Wait returns; a program that had ended already is no error of Stop's. When
// time runs out, Stop kills the program and returns an error wrapping a *TimeoutError.
func (p *Process) Stop(sig os.Signal, timeout time.Duration) error {
	if err := p.Signal(sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return err
	}
	err := p.Wait(timeout)
	var te *TimeoutError
	if errors.As(err, &te) {
		return errors.Join(fmt.Errorf("%w after signal %v; killed", err, sig), p.Kill())
	}
	return err
}

// Kill ends the program at once with SIGKILL, as a crash or the OOM killer would, and
// waits until it has ended. Killing a program that has ended does nothing.
func (p *Process) Kill() error {
	if p.Exited() {
		return nil
	}
	if err := p.cmd.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("kill %s: %w", p.name, err)
	}
	<-p.done
	return nil
}

// TimeoutError tells that a wait of a Process gave up: the program had not ended, or was
// not ready, when the timeout passed.
type TimeoutError struct {
	Name    string        // the program
	What    string        // what it did not do, such as "did not exit"
	Timeout time.Duration // how long the wait was
	Err     error         // the last readiness check's error, nil for an exit
}

func (e *TimeoutError) Error() string {
	s := fmt.Sprintf("%s %s within %s", e.Name, e.What, e.Timeout)
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

func (e *TimeoutError) Unwrap() error { return e.Err }
