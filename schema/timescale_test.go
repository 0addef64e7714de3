package schema

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// The TimescaleDB tests run against KOHAKU_TEST_TIMESCALEDB_URL. The shared test server
// takes one connection at a time, so each test uses exactly one.

// wantHypertables lists, from the catalog, the tables of the current schema that DESIGN.md
// calls stats tables.
func wantHypertables(t testing.TB, c *pgx.Conn) []string {
	t.Helper()
	names := textColumn(t, c, `SELECT tablename FROM pg_tables
WHERE schemaname = current_schema() AND (tablename LIKE 'rtc\_%\_stats' OR tablename = 'sora_node_erlang_vm_memory')
ORDER BY tablename`)
	if len(names) == 0 {
		t.Fatal("no stats tables after Migrate")
	}
	return names
}

// hypertableState is what TimescaleDB reports for one hypertable.
type hypertableState struct {
	chunkInterval            time.Duration
	compressed               bool
	segmentBy, orderBy       string
	compressJob, retainJob   int
	compressAfter, retainFor time.Duration
}

func readHypertables(t testing.TB, c *pgx.Conn) map[string]hypertableState {
	t.Helper()
	rows, err := c.Query(context.Background(), `SELECT h.hypertable_name,
	d.time_interval,
	h.compression_enabled,
	coalesce((SELECT string_agg(attname, ',' ORDER BY segmentby_column_index) FROM timescaledb_information.compression_settings s
		WHERE s.hypertable_schema = h.hypertable_schema AND s.hypertable_name = h.hypertable_name AND segmentby_column_index IS NOT NULL), ''),
	coalesce((SELECT string_agg(attname, ',' ORDER BY orderby_column_index) FROM timescaledb_information.compression_settings s
		WHERE s.hypertable_schema = h.hypertable_schema AND s.hypertable_name = h.hypertable_name AND orderby_column_index IS NOT NULL), ''),
	coalesce(jc.job_id, 0), coalesce((jc.config->>'compress_after')::interval, '0'),
	coalesce(jr.job_id, 0), coalesce((jr.config->>'drop_after')::interval, '0')
FROM timescaledb_information.hypertables h
JOIN timescaledb_information.dimensions d USING (hypertable_schema, hypertable_name)
LEFT JOIN timescaledb_information.jobs jc ON jc.hypertable_schema = h.hypertable_schema AND jc.hypertable_name = h.hypertable_name AND jc.proc_name = 'policy_compression'
LEFT JOIN timescaledb_information.jobs jr ON jr.hypertable_schema = h.hypertable_schema AND jr.hypertable_name = h.hypertable_name AND jr.proc_name = 'policy_retention'
WHERE h.hypertable_schema = current_schema() AND d.column_name = 'time'`)
	if err != nil {
		t.Fatalf("read hypertables: %v", err)
	}
	got := map[string]hypertableState{}
	var name string
	var s hypertableState
	if _, err := pgx.ForEachRow(rows, []any{&name, &s.chunkInterval, &s.compressed, &s.segmentBy, &s.orderBy,
		&s.compressJob, &s.compressAfter, &s.retainJob, &s.retainFor}, func() error {
		if _, dup := got[name]; dup {
			t.Errorf("hypertable %s has more than one policy of a kind", name)
		}
		got[name] = s
		return nil
	}); err != nil {
		t.Fatalf("read hypertables: %v", err)
	}
	return got
}

// checkHypertables checks that exactly the stats tables are hypertables configured as opts says.
func checkHypertables(t testing.TB, c *pgx.Conn, res Result, opts Options) map[string]hypertableState {
	t.Helper()
	want := wantHypertables(t, c)
	if !res.TimescaleDB {
		t.Error("Result.TimescaleDB is false")
	}
	if !slices.Equal(res.Hypertables, want) {
		t.Errorf("Result.Hypertables %v, want %v", res.Hypertables, want)
	}
	got := readHypertables(t, c)
	if len(got) != len(want) {
		t.Errorf("%d hypertables, want %d: %v", len(got), len(want), want)
	}
	for _, name := range want {
		s, ok := got[name]
		if !ok {
			t.Errorf("%s is not a hypertable", name)
			continue
		}
		segmentBy := "connection_id"
		if name == "sora_node_erlang_vm_memory" {
			segmentBy = "node_name"
		}
		wantState := hypertableState{
			chunkInterval: opts.ChunkInterval, compressed: true, segmentBy: segmentBy, orderBy: "time",
			compressJob: s.compressJob, compressAfter: opts.CompressAfter,
			retainJob: s.retainJob, retainFor: opts.RetainFor,
		}
		if s != wantState || s.compressJob == 0 || s.retainJob == 0 {
			t.Errorf("%s: got %+v, want %+v with both jobs", name, s, wantState)
		}
	}
	return got
}

func TestTimescaleDBMakesStatsTablesHypertables(t *testing.T) {
	c := freshConn(t, timescaleURL(t))
	opts := Options{ChunkInterval: 12 * time.Hour, CompressAfter: 9 * day, RetainFor: 30 * day}
	res := mustMigrate(t, c, opts)
	if len(res.Applied) != len(allMigrations(t)) {
		t.Errorf("applied %v, want all", versions(res.Applied))
	}
	checkHypertables(t, c, res, opts)
	for _, table := range []string{"sora_connection", "kohaku_dead_letter", "kohaku_schema_migrations"} {
		if _, ok := readHypertables(t, c)[table]; ok {
			t.Errorf("%s is a hypertable, want a plain table", table)
		}
	}
}

func TestTimescaleDBMigrateTwiceKeepsOrReplacesPolicies(t *testing.T) {
	c := freshConn(t, timescaleURL(t))
	first := Options{}.withDefaults()
	before := checkHypertables(t, c, mustMigrate(t, c, first), first)

	res := mustMigrate(t, c, first)
	if len(res.Applied) != 0 {
		t.Errorf("second run applied %v, want nothing", versions(res.Applied))
	}
	same := checkHypertables(t, c, res, first)
	for name, s := range same {
		if s.compressJob != before[name].compressJob || s.retainJob != before[name].retainJob {
			t.Errorf("%s: jobs %d/%d replaced by %d/%d although the intervals did not change",
				name, before[name].compressJob, before[name].retainJob, s.compressJob, s.retainJob)
		}
	}

	changed := Options{ChunkInterval: 6 * time.Hour, CompressAfter: 10 * day, RetainFor: 90 * day}
	checkHypertables(t, c, mustMigrate(t, c, changed), changed)
}

func TestTimescaleDBMovesRowsOfPlainTablesIntoChunks(t *testing.T) {
	c := freshConn(t, timescaleURL(t))
	// A database that ran on plain PostgreSQL before TimescaleDB came: migration 1 applied
	// and rows stored.
	if err := createMigrationsTable(context.Background(), c); err != nil {
		t.Fatal(err)
	}
	if err := apply(context.Background(), c, allMigrations(t)[0]); err != nil {
		t.Fatal(err)
	}
	const table = "rtc_codec_stats"
	insertRow(t, c, table, time.Now().Add(-2*day))
	opts := Options{}.withDefaults()
	res := mustMigrate(t, c, opts)
	if got := versions(res.Applied); len(got) == 0 || got[0] != 2 {
		t.Errorf("applied %v, want from 2 on", got)
	}
	checkHypertables(t, c, res, opts)
	var n int
	err := c.QueryRow(context.Background(), `SELECT (SELECT count(*) FROM ONLY `+table+`),
	(SELECT count(*) FROM `+table+`) - (SELECT count(*) FROM ONLY `+table+`)`).Scan(new(int), &n)
	if err != nil {
		t.Fatal(err)
	}
	if n != 1 {
		t.Errorf("%d rows in chunks, want the 1 row written before", n)
	}
}

// insertRow inserts a row at time at into table, filling the NOT NULL columns without a
// default that the test does not care about with a value of their type.
func insertRow(t testing.TB, c *pgx.Conn, table string, at time.Time) {
	t.Helper()
	ctx := context.Background()
	rows, err := c.Query(ctx, `SELECT a.attname, format_type(a.atttypid, a.atttypmod)
FROM pg_attribute a
WHERE a.attrelid = $1::regclass AND a.attnum > 0 AND NOT a.attisdropped
	AND (a.attnotnull AND NOT a.atthasdef OR a.attname IN ('connection_id', 'stats_id'))
	AND a.attname <> 'time'`, table)
	if err != nil {
		t.Fatal(err)
	}
	type column struct{ name, typ string }
	cols, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (column, error) {
		var col column
		return col, r.Scan(&col.name, &col.typ)
	})
	if err != nil {
		t.Fatal(err)
	}
	names, values := "time", "$1"
	for _, col := range cols {
		v := "'0'"
		switch col.typ {
		case "text", "character varying":
			v = "'x'"
		case "boolean":
			v = "false"
		case "jsonb", "json":
			v = "'{}'"
		case "timestamp with time zone":
			v = "now()"
		}
		names += ", " + pgx.Identifier{col.name}.Sanitize()
		values += ", " + v + "::" + col.typ
	}
	mustExec(t, c, "INSERT INTO "+pgx.Identifier{table}.Sanitize()+" ("+names+") VALUES ("+values+")", at)
}

func TestTimescaleDBPoliciesCompressAndDropOldChunks(t *testing.T) {
	c := freshConn(t, timescaleURL(t))
	opts := Options{}.withDefaults()
	mustMigrate(t, c, opts)
	const table = "rtc_codec_stats"
	now := time.Now()
	for _, age := range []time.Duration{time.Hour, 10 * day, 100 * day} {
		insertRow(t, c, table, now.Add(-age))
	}
	s := readHypertables(t, c)[table]
	// The test server has no job scheduler: run the policies as it would.
	var ext string
	if err := c.QueryRow(context.Background(), "SELECT extnamespace::regnamespace::text FROM pg_extension WHERE extname = 'timescaledb'").Scan(&ext); err != nil {
		t.Fatal(err)
	}
	mustExec(t, c, "CALL "+ext+".run_job($1::integer)", s.compressJob)
	mustExec(t, c, "CALL "+ext+".run_job($1::integer)", s.retainJob)

	var total, old int
	err := c.QueryRow(context.Background(), "SELECT count(*), count(*) FILTER (WHERE time < now() - $1::interval) FROM "+table, interval(opts.RetainFor)).Scan(&total, &old)
	if err != nil {
		t.Fatal(err)
	}
	if total != 2 || old != 0 {
		t.Errorf("%d rows, %d older than the retention, want 2 and 0", total, old)
	}
	rows, err := c.Query(context.Background(), `SELECT range_end < now() - $1::interval, is_compressed
FROM timescaledb_information.chunks WHERE hypertable_schema = current_schema() AND hypertable_name = $2`, interval(opts.CompressAfter), table)
	if err != nil {
		t.Fatal(err)
	}
	var due, compressed bool
	n := 0
	if _, err := pgx.ForEachRow(rows, []any{&due, &compressed}, func() error {
		n++
		if due != compressed {
			t.Errorf("chunk older than CompressAfter: %v, compressed: %v", due, compressed)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if n != 2 {
		t.Errorf("%d chunks, want 2 (the 100 days old one dropped)", n)
	}
}
