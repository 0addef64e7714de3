package proc

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"
)

// pollEvery is how often a readiness wait checks again, as testenv.Eventually does.
const pollEvery = 20 * time.Millisecond

// WaitHTTP waits until GET url answers with a 2xx status: a program's /readyz.
func (p *Process) WaitHTTP(url string, timeout time.Duration) error {
	return p.poll("did not answer "+url+" with 2xx", timeout, func() error {
		code, body, err := Get(url)
		if err != nil {
			return err
		}
		if code/100 != 2 {
			return fmt.Errorf("status %d: %s", code, strings.TrimSpace(body))
		}
		return nil
	})
}

// WaitTCP waits until addr accepts TCP connections.
func (p *Process) WaitTCP(addr string, timeout time.Duration) error {
	return p.poll("did not accept connections on "+addr, timeout, func() error {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			return err
		}
		return c.Close()
	})
}

// WaitLog waits until the program has written a JSON log line (log/slog's JSONHandler)
// whose "msg" is msg, and decodes that line into v: the receiver logs its addresses so.
// It reads the output Spawn keeps, so it never sees a line sent elsewhere.
func (p *Process) WaitLog(msg string, v any, timeout time.Duration) error {
	var (
		read  int    // bytes of whole lines looked at already
		found []byte // the line
	)
	err := p.poll(fmt.Sprintf("did not log %q", msg), timeout, func() error {
		out := p.Output()
		for {
			line, _, ok := strings.Cut(out[read:], "\n")
			if !ok { // a line still being written
				return errors.New("no such line yet")
			}
			read += len(line) + 1
			var l struct {
				Msg string `json:"msg"`
			}
			if json.Unmarshal([]byte(line), &l) == nil && l.Msg == msg {
				found = []byte(line)
				return nil
			}
		}
	})
	if err != nil {
		return err
	}
	if err := json.Unmarshal(found, v); err != nil {
		return fmt.Errorf("%s log line %q: %w", p.name, msg, err)
	}
	return nil
}

// poll calls check every pollEvery until it returns nil. It fails when the program ends
// first, or with a *TimeoutError holding check's last error when timeout passes.
func (p *Process) poll(what string, timeout time.Duration, check func() error) error {
	deadline := time.Now().Add(timeout)
	for {
		// Looked at before check: once the program has ended its output is complete, so a
		// check that fails then fails for good.
		ended := p.Exited()
		err := check()
		switch {
		case err == nil:
			return nil
		case ended && p.err == nil:
			return fmt.Errorf("%s %s: it ended with status 0", p.name, what)
		case ended:
			return fmt.Errorf("%s %s: it ended: %w", p.name, what, p.err)
		case time.Now().After(deadline):
			return &TimeoutError{Name: p.name, What: what, Timeout: timeout, Err: err}
		}
		select {
		case <-p.done:
		case <-time.After(pollEvery):
		}
	}
}

// Get returns the status and body of GET url, giving up after 5s: tests ask a program's
// admin endpoints (/healthz, /readyz, /metrics) this way.
func Get(url string) (int, string, error) {
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}
