// Package testenv gives tests what they share: the real NATS server they run against (a
// child process, or the system one), the CI rule that a missing service fails a test
// instead of skipping it, polling, and generated documentation kept in sync. It depends on
// nothing outside the standard library, so that every module's tests may use it.
package testenv

import (
	"crypto/rand"
	"encoding/hex"
	"net"
	"net/url"
	"os"
	"testing"
	"time"
)

// Unavailable skips the test, or fails it when CI is set, because a service is missing.
func Unavailable(t testing.TB, service string, err error) {
	t.Helper()
	if os.Getenv("CI") != "" {
		t.Fatalf("%s is required in CI and unavailable: %v", service, err)
	}
	t.Skipf("%s unavailable, test not run: %v", service, err)
}

// SystemNATS returns the URL of the machine's NATS (KOHAKU_TEST_NATS_URL, default
// nats://127.0.0.1:4222) after checking that it answers.
func SystemNATS(t testing.TB) string {
	t.Helper()
	u := Env("KOHAKU_TEST_NATS_URL", "nats://127.0.0.1:4222")
	pu, err := url.Parse(u)
	if err != nil {
		t.Fatalf("KOHAKU_TEST_NATS_URL: %v", err)
	}
	c, err := net.DialTimeout("tcp", pu.Host, 2*time.Second)
	if err != nil {
		Unavailable(t, "system NATS at "+pu.Host, err)
	}
	c.Close()
	return u
}

// RandomName returns prefix followed by 12 random hex digits: a name for a database or
// schema that no other test run uses.
func RandomName(prefix string) string {
	var b [6]byte
	rand.Read(b[:])
	return prefix + hex.EncodeToString(b[:])
}

// Env returns the environment variable key, or def when it is unset or empty.
func Env(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

// Eventually calls check every 20ms until it returns nil, and fails the test with the last
// error when timeout passes first. Tests poll with it instead of sleeping.
func Eventually(t testing.TB, timeout time.Duration, check func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := check()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %s: %v", timeout, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
