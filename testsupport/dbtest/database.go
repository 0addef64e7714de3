// Package dbtest gives tests a real PostgreSQL: a fresh database or schema of their own on
// the server of KOHAKU_TEST_DATABASE_URL, and outages of it. When the environment variable
// CI is set, a missing server fails the test instead of skipping it. It is a module of its
// own so that modules which never touch PostgreSQL (the receiver) do not depend on pgx.
package dbtest

import (
	"context"
	"fmt"
	"net/url"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"kohaku/testsupport/testenv"
)

// Database creates a fresh database on the test PostgreSQL server (KOHAKU_TEST_DATABASE_URL,
// default postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable), returns its URL and
// drops it when the test ends.
func Database(t testing.TB) string {
	t.Helper()
	u, drop, err := NewDatabase(context.Background())
	if err != nil {
		testenv.Unavailable(t, "PostgreSQL", err)
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
	admin := testenv.Env("KOHAKU_TEST_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable")
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
	name := testenv.RandomName("kohaku_test_")
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
	name := testenv.RandomName("kohaku_test_")
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
