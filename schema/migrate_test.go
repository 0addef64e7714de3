package schema

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// recordedVersions reads kohaku_schema_migrations in version order.
func recordedVersions(t testing.TB, c *pgx.Conn) []Migration {
	t.Helper()
	rows, err := c.Query(context.Background(), "SELECT version, name FROM kohaku_schema_migrations ORDER BY version")
	if err != nil {
		t.Fatalf("read kohaku_schema_migrations: %v", err)
	}
	got, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Migration, error) {
		var m Migration
		return m, r.Scan(&m.Version, &m.Name)
	})
	if err != nil {
		t.Fatalf("read kohaku_schema_migrations: %v", err)
	}
	return got
}

func versions(ms []Migration) []int {
	var vs []int
	for _, m := range ms {
		vs = append(vs, m.Version)
	}
	return vs
}

func allMigrations(t testing.TB) []Migration {
	t.Helper()
	ms, err := Migrations()
	if err != nil {
		t.Fatal(err)
	}
	return ms
}

func tableExists(t testing.TB, c *pgx.Conn, name string) bool {
	t.Helper()
	var ok bool
	if err := c.QueryRow(context.Background(), "SELECT to_regclass($1) IS NOT NULL", name).Scan(&ok); err != nil {
		t.Fatalf("look for %s: %v", name, err)
	}
	return ok
}

func TestMigrateFreshDatabaseAppliesAllAndRecordsThem(t *testing.T) {
	c := freshConn(t, postgresURL(t))
	var logs bytes.Buffer
	res := mustMigrate(t, c, Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))})

	want := allMigrations(t)
	if got := versions(res.Applied); len(got) != len(want) {
		t.Fatalf("applied %v, want all of %v", got, versions(want))
	}
	rec := recordedVersions(t, c)
	if len(rec) != len(want) {
		t.Fatalf("recorded %v, want %v", rec, versions(want))
	}
	for i := range want {
		if rec[i].Version != want[i].Version || rec[i].Name != want[i].Name {
			t.Errorf("recorded %d %q, want %d %q", rec[i].Version, rec[i].Name, want[i].Version, want[i].Name)
		}
	}
	for _, table := range []string{"rtc_codec_stats", "kohaku_dead_letter"} {
		if !tableExists(t, c, table) {
			t.Errorf("table %s missing after Migrate", table)
		}
	}
	if res.TimescaleDB || len(res.Hypertables) != 0 {
		t.Errorf("result %+v, want plain PostgreSQL", res)
	}
	if !strings.Contains(logs.String(), "level=WARN") || !strings.Contains(logs.String(), "plain PostgreSQL tables") {
		t.Errorf("log %q, want a warning that the tables are plain PostgreSQL tables", logs.String())
	}
}

func TestMigrateTwiceAppliesNothingTheSecondTime(t *testing.T) {
	c := freshConn(t, postgresURL(t))
	mustMigrate(t, c, Options{})
	res := mustMigrate(t, c, Options{})
	if len(res.Applied) != 0 {
		t.Errorf("second run applied %v, want nothing", versions(res.Applied))
	}
	if got, want := len(recordedVersions(t, c)), len(allMigrations(t)); got != want {
		t.Errorf("recorded %d migrations, want %d", got, want)
	}
}

func TestMigrateAppliesOnlyUnrecordedVersions(t *testing.T) {
	c := freshConn(t, postgresURL(t))
	mustMigrate(t, c, Options{})
	// Back to a database that only had migration 1.
	mustExec(t, c, "DROP TABLE kohaku_dead_letter")
	mustExec(t, c, "DELETE FROM kohaku_schema_migrations WHERE version > 1")

	res := mustMigrate(t, c, Options{})
	if got, want := versions(res.Applied), versions(allMigrations(t))[1:]; len(got) != len(want) || got[0] != 2 {
		t.Errorf("applied %v, want %v", got, want)
	}
	if !tableExists(t, c, "kohaku_dead_letter") {
		t.Error("kohaku_dead_letter not created again")
	}
}

func TestMigrateConcurrentRunsApplyEachMigrationOnce(t *testing.T) {
	conns := schemaConns(t, postgresURL(t), 2)
	var (
		wg      sync.WaitGroup
		results = make([]Result, len(conns))
		errs    = make([]error, len(conns))
	)
	for i, c := range conns {
		wg.Go(func() { results[i], errs[i] = Migrate(context.Background(), c, Options{}) })
	}
	wg.Wait()
	applied := map[int]int{}
	for i := range conns {
		if errs[i] != nil {
			t.Fatalf("Migrate on connection %d: %v", i, errs[i])
		}
		for _, m := range results[i].Applied {
			applied[m.Version]++
		}
	}
	for _, m := range allMigrations(t) {
		if applied[m.Version] != 1 {
			t.Errorf("migration %d applied %d times, want once", m.Version, applied[m.Version])
		}
	}
	if got, want := len(recordedVersions(t, conns[0])), len(allMigrations(t)); got != want {
		t.Errorf("recorded %d migrations, want %d", got, want)
	}
}

func TestMigrateWaitsForTheAdvisoryLockAndReleasesIt(t *testing.T) {
	conns := schemaConns(t, postgresURL(t), 2)
	holder, c := conns[0], conns[1]
	mustExec(t, holder, "SELECT pg_advisory_lock($1)", lockKey)

	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if _, err := Migrate(ctx, c, Options{}); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Migrate while another session holds the lock: %v, want it to wait until the deadline", err)
	}
	if tableExists(t, holder, "kohaku_schema_migrations") {
		t.Error("Migrate created tables without holding the lock")
	}
	mustExec(t, holder, "SELECT pg_advisory_unlock($1)", lockKey)

	// Cancelling the lock wait closes c in pgx; migrate on a new connection instead.
	c = schemaConnLike(t, holder)
	mustMigrate(t, c, Options{})
	var free bool
	if err := holder.QueryRow(context.Background(), "SELECT pg_try_advisory_lock($1)", lockKey).Scan(&free); err != nil {
		t.Fatal(err)
	}
	if !free {
		t.Error("the advisory lock is still held after Migrate returned")
	}
	mustExec(t, holder, "SELECT pg_advisory_unlock($1)", lockKey)
}

// schemaConnLike opens another connection with the same database and search_path as c.
func schemaConnLike(t testing.TB, c *pgx.Conn) *pgx.Conn {
	t.Helper()
	ctx := context.Background()
	var path string
	if err := c.QueryRow(ctx, "SELECT current_setting('search_path')").Scan(&path); err != nil {
		t.Fatal(err)
	}
	n, err := pgx.ConnectConfig(ctx, c.Config())
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(func() { n.Close(context.Background()) })
	mustExec(t, n, "SET search_path TO "+path)
	return n
}

func TestFailedMigrationLeavesNoTrace(t *testing.T) {
	c := freshConn(t, postgresURL(t))
	mustMigrate(t, c, Options{})
	bad := Migration{Version: 99, Name: "broken", SQL: "CREATE TABLE half_done (x int); SELECT 1/0;"}
	if err := apply(context.Background(), c, bad); err == nil || !strings.Contains(err.Error(), "0099_broken") {
		t.Fatalf("apply of a failing migration: %v, want an error naming it", err)
	}
	if tableExists(t, c, "half_done") {
		t.Error("the failed migration's first statement was kept")
	}
	for _, m := range recordedVersions(t, c) {
		if m.Version == 99 {
			t.Error("the failed migration was recorded")
		}
	}
}

func TestMigrateRejectsInvalidOptionsBeforeConnecting(t *testing.T) {
	// A nil connection proves that nothing touches the database.
	_, err := Migrate(context.Background(), nil, Options{CompressAfter: -time.Hour})
	if err == nil || !strings.Contains(err.Error(), "CompressAfter must be > 0") {
		t.Fatalf("Migrate: %v, want the validation error", err)
	}
}

func TestMigratePool(t *testing.T) {
	c := freshConn(t, postgresURL(t))
	var path string
	if err := c.QueryRow(context.Background(), "SELECT current_setting('search_path')").Scan(&path); err != nil {
		t.Fatal(err)
	}
	cfg, err := pgxpool.ParseConfig(postgresURL(t))
	if err != nil {
		t.Fatal(err)
	}
	cfg.ConnConfig.RuntimeParams["search_path"] = path
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	res, err := MigratePool(context.Background(), pool, Options{})
	if err != nil {
		t.Fatalf("MigratePool: %v", err)
	}
	if len(res.Applied) != len(allMigrations(t)) {
		t.Errorf("applied %v, want all", versions(res.Applied))
	}
	if !tableExists(t, c, "kohaku_dead_letter") {
		t.Error("MigratePool did not migrate the pool's database")
	}
}

func TestDeadLetterKeepsARedeliveredMessageOnce(t *testing.T) {
	c := freshConn(t, postgresURL(t))
	mustMigrate(t, c, Options{})
	const insert = `INSERT INTO kohaku_dead_letter (stream_seq, subject, headers, body, error)
VALUES ($1, 'kohaku.stats.connection.user-agent', '{"Kohaku-Exporter-Type": ["connection.user-agent"]}', $2, 'decode: unexpected EOF')
ON CONFLICT DO NOTHING`
	for range 2 {
		mustExec(t, c, insert, int64(42), []byte("{not json"))
	}
	mustExec(t, c, insert, int64(43), []byte("{not json either"))
	var n int
	if err := c.QueryRow(context.Background(), "SELECT count(*) FROM kohaku_dead_letter WHERE stream_seq = 42 AND time IS NOT NULL").Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 1 {
		t.Errorf("%d rows for stream_seq 42, want 1", n)
	}
}
