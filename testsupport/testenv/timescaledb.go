package testenv

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
)

// TimescaleDB returns KOHAKU_TEST_TIMESCALEDB_URL, a database on a TimescaleDB server, and
// holds it for the test: the shared test server takes one connection at a time, and go test
// runs packages in parallel processes, so a lock file serializes their use of it. Tests of
// one package share the hold. Without the variable the test is skipped, or fails in CI.
func TimescaleDB(t testing.TB) string {
	t.Helper()
	u := os.Getenv("KOHAKU_TEST_TIMESCALEDB_URL")
	if u == "" {
		Unavailable(t, "TimescaleDB", errors.New("KOHAKU_TEST_TIMESCALEDB_URL is not set: .ci/run starts a TimescaleDB and sets it (README.md, Run the tests)"))
	}
	if err := timescaleHold.acquire(u); err != nil {
		t.Fatalf("lock the TimescaleDB test server: %v", err)
	}
	t.Cleanup(timescaleHold.release)
	return u
}

// hold is a cross-process lock, re-entrant within the process.
type hold struct {
	mu    sync.Mutex
	count int
	f     *os.File
}

var timescaleHold hold // process-wide by nature: it stands for a lock file

func (h *hold) acquire(key string) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.count > 0 {
		h.count++
		return nil
	}
	sum := sha256.Sum256([]byte(key))
	name := filepath.Join(os.TempDir(), "kohaku-timescaledb-"+hex.EncodeToString(sum[:8])+".lock")
	f, err := os.OpenFile(name, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return fmt.Errorf("flock %s: %w", name, err)
	}
	h.f, h.count = f, 1
	return nil
}

func (h *hold) release() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.count--
	if h.count == 0 {
		h.f.Close() // closing releases the flock
		h.f = nil
	}
}
