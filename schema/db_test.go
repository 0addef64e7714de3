package schema

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// testDatabase is the database that TestMain created for this package on the system
// PostgreSQL, or why it could not.
var testDatabase struct {
	url string
	err error
}

func TestMain(m *testing.M) {
	admin := envOr("KOHAKU_TEST_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable")
	name := "kohaku_test_" + randomSuffix()
	testDatabase.url, testDatabase.err = createDatabase(admin, name)
	code := m.Run()
	if testDatabase.err == nil {
		if err := dropDatabase(admin, name); err != nil {
			fmt.Fprintln(os.Stderr, err)
			code = 1
		}
	}
	os.Exit(code)
}

func createDatabase(admin, name string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		return "", err
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		return "", fmt.Errorf("create database %s: %w", name, err)
	}
	u, err := url.Parse(admin)
	if err != nil {
		return "", fmt.Errorf("KOHAKU_TEST_DATABASE_URL: %w", err)
	}
	u.Path = "/" + name
	return u.String(), nil
}

func dropDatabase(admin, name string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		return fmt.Errorf("drop database %s: %w", name, err)
	}
	defer conn.Close(ctx)
	// FORCE: a failed test may have left a connection open.
	if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
		return fmt.Errorf("drop database %s: %w", name, err)
	}
	return nil
}

// unavailable skips the test, or fails it when CI is set, because a service is missing.
func unavailable(t testing.TB, service string, err error) {
	t.Helper()
	if os.Getenv("CI") != "" {
		t.Fatalf("%s is required in CI and unavailable: %v", service, err)
	}
	t.Skipf("%s unavailable, test not run: %v", service, err)
}

// postgresURL returns the URL of this package's database on the system PostgreSQL.
func postgresURL(t testing.TB) string {
	t.Helper()
	if testDatabase.err != nil {
		unavailable(t, "PostgreSQL (KOHAKU_TEST_DATABASE_URL)", testDatabase.err)
	}
	return testDatabase.url
}

// timescaleURL returns KOHAKU_TEST_TIMESCALEDB_URL, the database of a TimescaleDB server.
func timescaleURL(t testing.TB) string {
	t.Helper()
	u := os.Getenv("KOHAKU_TEST_TIMESCALEDB_URL")
	if u == "" {
		unavailable(t, "TimescaleDB", fmt.Errorf("KOHAKU_TEST_TIMESCALEDB_URL is not set (start one with shared/tools/timescaledb/start.sh)"))
	}
	return u
}

// schemaConns opens n connections to dbURL whose search_path is a new, empty schema, so each
// test migrates a fresh database of its own; the schema is dropped when the test ends.
func schemaConns(t testing.TB, dbURL string, n int) []*pgx.Conn {
	t.Helper()
	ctx := context.Background()
	cfg, err := pgx.ParseConfig(dbURL)
	if err != nil {
		t.Fatalf("parse %s: %v", dbURL, err)
	}
	name := "kohaku_test_" + randomSuffix()
	var conns []*pgx.Conn
	t.Cleanup(func() {
		if len(conns) == 0 {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		for _, c := range conns[1:] {
			c.Close(ctx)
		}
		// The first connection drops the schema, after the others closed, because a
		// server that takes one connection at a time has only that one.
		if _, err := conns[0].Exec(ctx, "DROP SCHEMA IF EXISTS "+name+" CASCADE"); err != nil {
			t.Errorf("drop schema %s: %v", name, err)
		}
		conns[0].Close(ctx)
	})
	for i := range n {
		c, err := pgx.ConnectConfig(ctx, cfg)
		if err != nil {
			t.Fatalf("connect: %v", err)
		}
		conns = append(conns, c)
		if i == 0 {
			mustExec(t, c, "CREATE SCHEMA "+name)
		}
		// SET rather than a startup parameter: not every server honours those.
		mustExec(t, c, "SET search_path TO "+name)
	}
	return conns
}

// freshConn is schemaConns for one connection.
func freshConn(t testing.TB, dbURL string) *pgx.Conn {
	t.Helper()
	return schemaConns(t, dbURL, 1)[0]
}

func mustExec(t testing.TB, c *pgx.Conn, sql string, args ...any) {
	t.Helper()
	if _, err := c.Exec(context.Background(), sql, args...); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

func mustMigrate(t testing.TB, c *pgx.Conn, opts Options) Result {
	t.Helper()
	res, err := Migrate(context.Background(), c, opts)
	if err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	return res
}

func randomSuffix() string {
	var b [6]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}
