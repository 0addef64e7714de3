package testenv

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"kohaku/testsupport/proc"
)

// NATSServerVersion is the nats-server release that NATS runs: the one the writer embeds
// (writer/go.mod), so that every test meets the same JetStream. A writer test keeps the two
// equal.
const NATSServerVersion = "v2.15.2"

// NATSServer is a real nats-server with JetStream, run as a child process of the test on a
// free loopback port. Tests stop and restart it to play outages; its data stays.
type NATSServer struct {
	t    testing.TB
	bin  string
	dir  string
	port int

	mu      sync.Mutex
	running *proc.Process // nil while stopped
}

// NATS starts a nats-server with JetStream for the test and stops it at the end. The
// binary is built once from the module cache (go install) and kept in the user cache, so
// that test packages need not link the server: the receiver's module depends on no part of
// it.
func NATS(t testing.TB) *NATSServer {
	t.Helper()
	bin, err := natsServerBinary()
	if err != nil {
		t.Fatalf("build nats-server %s: %v", NATSServerVersion, err)
	}
	s := &NATSServer{t: t, bin: bin, dir: t.TempDir(), port: freePort(t)}
	if err := s.Restart(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Shutdown)
	return s
}

// URL returns the client URL, nats://127.0.0.1:port.
func (s *NATSServer) URL() string { return "nats://" + s.Addr() }

// Addr returns 127.0.0.1:port of the client listener.
func (s *NATSServer) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port)) }

// Shutdown stops the server (SIGTERM, as an operator would) and waits until it has exited.
// Stopping a stopped server does nothing.
func (s *NATSServer) Shutdown() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.running == nil {
		return
	}
	// Its exit status after the interrupt tells nothing the test needs; Stop kills it if it hangs.
	_ = s.running.Stop(os.Interrupt, 10*time.Second)
	s.running = nil
}

// Restart starts a stopped server again on the same port and data directory, and returns
// once it accepts connections.
func (s *NATSServer) Restart() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.running != nil {
		return fmt.Errorf("nats-server on %s is running", s.Addr())
	}
	cmd := exec.Command(s.bin, "-a", "127.0.0.1", "-p", strconv.Itoa(s.port), "-js", "-sd", s.dir)
	p, err := proc.Spawn("nats-server", cmd)
	if err != nil {
		return err
	}
	// Readiness is the client port answering; JetStream is up by then on a single node.
	if err := p.WaitTCP(s.Addr(), 30*time.Second); err != nil {
		return errors.Join(fmt.Errorf("%w: %s", err, p.Output()), p.Kill())
	}
	s.running = p
	return nil
}

// natsServerBinary returns the path of the nats-server binary of NATSServerVersion,
// installing it into the user cache on first use. Concurrent test processes may install at
// once: go install writes the binary atomically.
func natsServerBinary() (string, error) {
	cache, err := os.UserCacheDir()
	if err != nil {
		cache = os.TempDir()
	}
	dir := filepath.Join(cache, "kohaku-test", "nats-server-"+NATSServerVersion)
	bin := filepath.Join(dir, "nats-server")
	if _, err := os.Stat(bin); err == nil {
		return bin, nil
	}
	cmd := exec.Command("go", "install", "github.com/nats-io/nats-server/v2@"+NATSServerVersion)
	// Outside any module and workspace, so that only the pinned release is built.
	cmd.Dir = os.TempDir()
	cmd.Env = append(os.Environ(), "GOBIN="+dir, "GOWORK=off", "GOFLAGS=")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go install: %w: %s", err, out)
	}
	return bin, nil
}

// freePort returns a loopback TCP port that was free a moment ago (proc.FreeAddr says
// why it lies below the ephemeral range).
func freePort(t testing.TB) int {
	t.Helper()
	_, p, err := net.SplitHostPort(proc.FreeAddr(t))
	if err != nil {
		t.Fatal(err)
	}
	port, err := strconv.Atoi(p)
	if err != nil {
		t.Fatal(err)
	}
	return port
}
