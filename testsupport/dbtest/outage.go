package dbtest

import (
	"context"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// BlockDatabase makes the database of dbURL refuse connections and ends those it has, as
// an outage does, until AllowDatabase or the end of the test.
func BlockDatabase(t testing.TB, dbURL string) {
	t.Helper()
	name := databaseName(t, dbURL)
	adminExec(t, dbURL, "ALTER DATABASE "+pgx.Identifier{name}.Sanitize()+" ALLOW_CONNECTIONS false")
	t.Cleanup(func() { AllowDatabase(t, dbURL) })
	adminExec(t, dbURL, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()", name)
}

// AllowDatabase ends BlockDatabase.
func AllowDatabase(t testing.TB, dbURL string) {
	t.Helper()
	adminExec(t, dbURL, "ALTER DATABASE "+pgx.Identifier{databaseName(t, dbURL)}.Sanitize()+" ALLOW_CONNECTIONS true")
}

func databaseName(t testing.TB, dbURL string) string {
	t.Helper()
	u, err := url.Parse(dbURL)
	if err != nil {
		t.Fatalf("database url: %v", err)
	}
	return strings.TrimPrefix(u.Path, "/")
}

// adminExec runs sql in the maintenance database "postgres" of dbURL's server.
func adminExec(t testing.TB, dbURL, sql string, args ...any) {
	t.Helper()
	u, err := url.Parse(dbURL)
	if err != nil {
		t.Fatalf("database url: %v", err)
	}
	u.Path = "/postgres"
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, u.String())
	if err != nil {
		t.Fatalf("connect to %s: %v", u.Redacted(), err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, sql, args...); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}
