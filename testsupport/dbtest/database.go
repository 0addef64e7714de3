// Package testenv gives tests the real services they run against: an embedded JetStream,
// the system NATS, and a fresh PostgreSQL database. When the environment variable CI is
// set, a missing service fails the test instead of skipping it.
package testenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"kohaku/pkg/embedded"
)

// Unavailable skips the test, or fails it when CI is set, because a service is missing.
func Unavailable(t testing.TB, service string, err error) {
	t.Helper()
	if os.Getenv("CI") != "" {
		t.Fatalf("%s is required in CI and unavailable: %v", service, err)
	}
	t.Skipf("%s unavailable, test not run: %v", service, err)
}

// NATS starts an embedded JetStream server on a free loopback port for the test and shuts
// it down at the end.
func NATS(t testing.TB) *embedded.Server {
	t.Helper()
	s, err := embedded.Start(embedded.Options{Listen: "127.0.0.1:0", Dir: t.TempDir()})
	if err != nil {
		t.Fatalf("start embedded nats: %v", err)
	}
	t.Cleanup(func() { s.Shutdown() })
	return s
}

// SystemNATS returns the URL of the machine's NATS (KOHAKU_TEST_NATS_URL, default
// nats://127.0.0.1:4222) after checking that it answers.
func SystemNATS(t testing.TB) string {
	t.Helper()
	u := env("KOHAKU_TEST_NATS_URL", "nats://127.0.0.1:4222")
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

// Database creates a fresh database on the test PostgreSQL server (KOHAKU_TEST_DATABASE_URL,
// default postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable), returns its URL and
// drops it when the test ends.
func Database(t testing.TB) string {
	t.Helper()
	u, drop, err := NewDatabase(context.Background())
	if err != nil {
		Unavailable(t, "PostgreSQL", err)
	}
	t.Cleanup(func() {
		if err := drop(); err != nil {
			t.Error(err)
		}
	})
	return u
}

// NewDatabase creates a fresh database as Database does, for a TestMain that shares one
// database between the tests of a package. drop removes it.
func NewDatabase(ctx context.Context) (dbURL string, drop func() error, err error) {
	admin := env("KOHAKU_TEST_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable")
	u, err := url.Parse(admin)
	if err != nil {
		return "", nil, fmt.Errorf("KOHAKU_TEST_DATABASE_URL: %w", err)
	}
	// Generous: CREATE DATABASE waits for a checkpoint, slow on a busy machine.
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		return "", nil, err
	}
	defer conn.Close(ctx)
	name := RandomName("kohaku_test_")
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		return "", nil, fmt.Errorf("create database %s: %w", name, err)
	}
	u.Path = "/" + name
	return u.String(), func() error { return dropDatabase(admin, name) }, nil
}

func dropDatabase(admin, name string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		return fmt.Errorf("drop database %s: connect: %w", name, err)
	}
	defer conn.Close(ctx)
	// FORCE: a test that failed may leave a pool connected.
	if _, err := conn.Exec(ctx, fmt.Sprintf("DROP DATABASE IF EXISTS %s WITH (FORCE)", name)); err != nil {
		return fmt.Errorf("drop database %s: %w", name, err)
	}
	return nil
}

// Schema creates a fresh schema in the database at dbURL and returns a URL whose
// search_path is that schema, so whoever connects with it sees only its tables: a cheap
// fresh database for each test of a package sharing one from NewDatabase. The schema is
// dropped when the test ends.
func Schema(t testing.TB, dbURL string) string {
	t.Helper()
	name := RandomName("kohaku_test_")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := execOnce(ctx, dbURL, "CREATE SCHEMA "+name); err != nil {
		t.Fatalf("create schema: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := execOnce(ctx, dbURL, "DROP SCHEMA "+name+" CASCADE"); err != nil {
			t.Errorf("drop schema: %v", err)
		}
	})
	u, err := url.Parse(dbURL)
	if err != nil {
		t.Fatalf("database URL: %v", err)
	}
	q := u.Query()
	q.Set("search_path", name)
	u.RawQuery = q.Encode()
	return u.String()
}

func execOnce(ctx context.Context, dbURL, sql string) error {
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		return fmt.Errorf("%s: connect: %w", sql, err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, sql); err != nil {
		return fmt.Errorf("%s: %w", sql, err)
	}
	return nil
}

// RandomName returns prefix followed by 12 random hex digits: a name for a database or
// schema that no other test run uses.
func RandomName(prefix string) string {
	var b [6]byte
	rand.Read(b[:])
	return prefix + hex.EncodeToString(b[:])
}

func env(key, def string) string {
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
