package schema

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"kohaku/testsupport/dbtest"
	"kohaku/testsupport/testenv"
)

// testDatabase is the database that TestMain created for this package on the system
// PostgreSQL, or why it could not.
var testDatabase struct {
	url string
	err error
}

func TestMain(m *testing.M) {
	var drop func() error
	testDatabase.url, drop, testDatabase.err = dbtest.NewDatabase(context.Background())
	code := m.Run()
	if testDatabase.err == nil {
		if err := drop(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			code = 1
		}
	}
	os.Exit(code)
}

// postgresURL returns the URL of this package's database on the system PostgreSQL.
func postgresURL(t testing.TB) string {
	t.Helper()
	if testDatabase.err != nil {
		testenv.Unavailable(t, "PostgreSQL (KOHAKU_TEST_DATABASE_URL)", testDatabase.err)
	}
	return testDatabase.url
}

// timescaleURL returns KOHAKU_TEST_TIMESCALEDB_URL, held for the test (see testenv.TimescaleDB).
func timescaleURL(t testing.TB) string {
	t.Helper()
	return testenv.TimescaleDB(t)
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

// textColumn returns the first column of the rows of a query, as text.
func textColumn(t testing.TB, c *pgx.Conn, sql string, args ...any) []string {
	t.Helper()
	rows, err := c.Query(context.Background(), sql, args...)
	if err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	vals, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return vals
}
