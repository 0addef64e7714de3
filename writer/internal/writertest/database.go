package writertest

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

	"kohaku/pkg/testenv"
	"kohaku/schema"
)

// packageDB is the database that Run created for the test package, or why it could not.
var packageDB struct {
	url string
	err error
}

// Run runs a test package's tests with a database of their own on the test PostgreSQL
// server (KOHAKU_TEST_DATABASE_URL, default the local server's "postgres" database): it
// creates the database first and drops it at the end. It returns the exit code; call it
// from TestMain.
func Run(m *testing.M) int {
	admin := os.Getenv("KOHAKU_TEST_DATABASE_URL")
	if admin == "" {
		admin = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"
	}
	name := "kohaku_test_" + randomSuffix()
	packageDB.url, packageDB.err = createDatabase(admin, name)
	code := m.Run()
	if packageDB.err == nil {
		if err := dropDatabase(admin, name); err != nil {
			fmt.Fprintln(os.Stderr, err)
			code = 1
		}
	}
	return code
}

// Database returns the URL of a fresh, migrated schema of the package's database: the URL
// sets search_path to it, so whoever connects with the URL sees only its tables. The
// schema is dropped when the test ends. Without Run or a database it skips the test, or
// fails it when CI is set.
func Database(t testing.TB) string {
	t.Helper()
	return newSchema(t, true)
}

// EmptyDatabase is Database without the migrations: a database the writer has never seen.
func EmptyDatabase(t testing.TB) string {
	t.Helper()
	return newSchema(t, false)
}

func newSchema(t testing.TB, migrate bool) string {
	t.Helper()
	if packageDB.url == "" && packageDB.err == nil {
		t.Fatal("writertest.Database needs writertest.Run in TestMain")
	}
	if packageDB.err != nil {
		testenv.Unavailable(t, "PostgreSQL (KOHAKU_TEST_DATABASE_URL)", packageDB.err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, packageDB.url)
	if err != nil {
		t.Fatalf("connect to the test database: %v", err)
	}
	defer conn.Close(ctx)
	name := "kohaku_test_" + randomSuffix()
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+name); err != nil {
		t.Fatalf("create schema %s: %v", name, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, packageDB.url)
		if err != nil {
			t.Errorf("drop schema %s: %v", name, err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "DROP SCHEMA "+name+" CASCADE"); err != nil {
			t.Errorf("drop schema %s: %v", name, err)
		}
	})
	if _, err := conn.Exec(ctx, "SET search_path TO "+name); err != nil {
		t.Fatalf("set search_path: %v", err)
	}
	if migrate {
		if _, err := schema.Migrate(ctx, conn, schema.Options{}); err != nil {
			t.Fatalf("migrate the test schema: %v", err)
		}
	}
	u, err := url.Parse(packageDB.url)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("search_path", name)
	u.RawQuery = q.Encode()
	return u.String()
}

func createDatabase(admin, name string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
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
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		return fmt.Errorf("drop database %s: %w", name, err)
	}
	defer conn.Close(ctx)
	// FORCE: a failed test may have left a pool connected.
	if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
		return fmt.Errorf("drop database %s: %w", name, err)
	}
	return nil
}

func randomSuffix() string {
	var b [6]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
