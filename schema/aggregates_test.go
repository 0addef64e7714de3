package schema

import (
	"context"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// The per-minute RTP views run on both kinds of server. On TimescaleDB each test refreshes
// the continuous aggregates before it reads, and checks that what it reads was materialized,
// so that the numbers compared are those of the continuous aggregates, not of real-time
// aggregation over the raw rows.

// inboundColumns and outboundColumns are the figures the hand-made expectations check.
const (
	inboundColumns  = "bucket, samples, interval_seconds, counter_reset, bytes_received, bitrate, packets_received, packets_per_second, packets_lost, loss_percent, jitter, round_trip_time, frames_per_second, frame_width, frame_height, freeze_count, freeze_duration"
	outboundColumns = "bucket, samples, interval_seconds, counter_reset, bytes_sent, bitrate, packets_sent, packets_per_second, packets_lost, loss_percent, jitter, round_trip_time, frames_per_second, frame_width, frame_height, target_bitrate, quality_limitation_reason, rid"
)

func minute(n int) time.Time { return handStart.Add(time.Duration(n) * time.Minute) }

func TestRTPViewsComputeTheHandMadeSeries(t *testing.T) {
	for _, db := range databases {
		t.Run(db.name, func(t *testing.T) {
			c := freshConn(t, db.url(t))
			mustMigrate(t, c, Options{})
			insertSeries(t, c, handSeries()...)
			refreshAll(t, c)

			tests := []struct {
				name string
				sql  string
				want [][]any
			}{
				{
					name: "inbound",
					sql:  "SELECT " + inboundColumns + " FROM kohaku_inbound_rtp_1m WHERE connection_id = 'conn-hand' ORDER BY bucket",
					want: [][]any{
						// Minute 0 has no minute before: from its first sample to its last.
						{minute(0), int64(2), 20.0, false, int64(250_000), 100_000.0, int64(190), 9.5, int64(10), 5.0, 0.015, 0.05, 25.0, int64(1280), int64(720), int64(1), 0.5},
						// packetsLost went down by itself: no loss, not a reset. The round
						// trip time is (0.9-0.3)/(10-6) measured in the minute.
						{minute(1), int64(1), 60.0, false, int64(750_000), 100_000.0, int64(600), 10.0, int64(0), 0.0, 0.03, 0.15, 30.0, int64(1280), int64(720), int64(0), 0.0},
						// The stream started again: the new values count from zero.
						{minute(2), int64(1), 60.0, true, int64(150_000), 20_000.0, int64(100), 100.0 / 60, int64(2), 200.0 / 102, 0.04, nil, 30.0, int64(1280), int64(720), int64(0), 0.0},
						// Minute 3 has no sample: minute 4 covers two minutes.
						{minute(4), int64(1), 120.0, false, int64(300_000), 20_000.0, int64(300), 2.5, int64(0), 0.0, 0.04, nil, 30.0, int64(1280), int64(720), int64(0), 0.0},
					},
				},
				{
					name: "outbound",
					sql:  "SELECT " + outboundColumns + " FROM kohaku_outbound_rtp_1m WHERE connection_id = 'conn-hand' ORDER BY bucket",
					want: [][]any{
						{minute(0), int64(2), 30.0, false, int64(375_000), 100_000.0, int64(300), 10.0, int64(15), 5.0, 0.002, 0.03, 30.0, int64(640), int64(360), 1e6, "none", "r0"},
						// The remote's round trip counters went down: its 3 lost packets and
						// its 0.05 s round trip count from zero.
						{minute(1), int64(1), 60.0, false, int64(750_000), 100_000.0, int64(600), 10.0, int64(3), 0.5, 0.002, 0.05, 24.0, int64(320), int64(180), 5e5, "bandwidth", "r0"},
					},
				},
			}
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					got := query(t, c, tt.sql)
					want := table{cols: got.cols, rows: tt.want}
					if d := diffTables(got, want); d != "" {
						t.Errorf("%s:\n%s", tt.sql, d)
					}
				})
			}
		})
	}
}

func TestContinuousAggregatesGiveTheNumbersOfThePlainViews(t *testing.T) {
	pg := freshConn(t, postgresURL(t))
	ts := freshConn(t, timescaleURL(t))
	data := append(handSeries(), randomSeries(7)...)
	for _, c := range []*pgx.Conn{pg, ts} {
		mustMigrate(t, c, Options{})
		loadFixtures(t, c)
		insertSeries(t, c, data...)
	}
	// The rows are read from compressed chunks when the aggregates are materialized.
	compressRTPChunks(t, ts)
	refreshAll(t, ts)

	objects := append(aggregateNames(), "kohaku_inbound_rtp_1m", "kohaku_outbound_rtp_1m")
	for _, name := range objects {
		t.Run(name, func(t *testing.T) {
			// Collation "C": the two servers' default collations may order text differently.
			sql := "SELECT * FROM " + name + ` ORDER BY connection_id COLLATE "C", stats_id COLLATE "C", bucket`
			want := query(t, pg, sql)
			got := query(t, ts, sql)
			if len(want.rows) == 0 {
				t.Fatalf("%s is empty on PostgreSQL", name)
			}
			if d := diffTables(got, want); d != "" {
				t.Errorf("TimescaleDB and PostgreSQL differ in %s:\n%s", name, d)
			}
			if d := diffTables(columnTypes(t, ts, name), columnTypes(t, pg, name)); d != "" {
				t.Errorf("column types of %s differ:\n%s", name, d)
			}
		})
	}
	t.Run("fixtures", func(t *testing.T) {
		// Each fixture connection sends and receives one audio and one video stream, 4
		// samples 2 s apart within one minute: every figure comes from them.
		got := query(t, pg, `SELECT stats_id, samples, round(interval_seconds), bitrate > 0, round_trip_time > 0
FROM kohaku_inbound_rtp_1m WHERE channel_id = 'kohaku-fixture'`)
		if len(got.rows) != 4 {
			t.Fatalf("%d inbound rows from the fixtures, want 4 (2 connections, audio and video): %v", len(got.rows), got.rows)
		}
		for _, r := range got.rows {
			if r[1] != int64(4) || !sameValue(r[2], 6.0) || r[3] != true || r[4] != true {
				t.Errorf("fixture row %v, want 4 samples over 6 s with a bitrate and a round trip time", r)
			}
		}
	})
}

func TestRTPViewsNeverGiveNegativeOrImpossibleFigures(t *testing.T) {
	for _, db := range databases {
		t.Run(db.name, func(t *testing.T) {
			c := freshConn(t, db.url(t))
			mustMigrate(t, c, Options{})
			insertSeries(t, c, randomSeries(11)...)
			refreshAll(t, c)
			checks := map[string][]string{
				"kohaku_inbound_rtp_1m":  {"interval_seconds", "bytes_received", "bitrate", "packets_received", "packets_per_second", "packets_lost", "loss_percent", "round_trip_time", "freeze_count", "freeze_duration"},
				"kohaku_outbound_rtp_1m": {"interval_seconds", "bytes_sent", "bitrate", "packets_sent", "packets_per_second", "packets_lost", "loss_percent", "round_trip_time"},
			}
			for view, cols := range checks {
				var conds []string
				for _, col := range cols {
					conds = append(conds, col+" < 0")
				}
				bad := query(t, c, "SELECT connection_id, stats_id, bucket FROM "+view+" WHERE "+strings.Join(conds, " OR ")+" OR loss_percent > 100")
				if len(bad.rows) > 0 {
					t.Errorf("%s has negative figures or a loss above 100%% in %v", view, bad.rows)
				}
				var resets, rows int
				if err := c.QueryRow(context.Background(), "SELECT count(*) FILTER (WHERE counter_reset), count(*) FROM "+view).Scan(&resets, &rows); err != nil {
					t.Fatal(err)
				}
				if resets == 0 || rows < 50 {
					t.Errorf("%s: %d rows with %d resets: the data does not test resets", view, rows, resets)
				}
			}
		})
	}
}

func TestRefreshAggregatesBringsRowsWrittenLateIntoOldMinutes(t *testing.T) {
	for _, db := range databases {
		t.Run(db.name, func(t *testing.T) {
			c := freshConn(t, db.url(t))
			res := mustMigrate(t, c, Options{})
			insertSeries(t, c, handSeries()...)
			refreshAll(t, c)
			// A replay writes a sample that was missing in minute 1.
			late := handSeries()[0]
			late.samples = []sample{{at(85), []any{"video", int64(1111), int64(1_100_000), int64(870), int64(12), int64(1), 0.5, 0.030, 30.0, int64(1280), int64(720)}}}
			insertSeries(t, c, late)

			readMinute1 := func() (samples, bytes int64) {
				t.Helper()
				err := c.QueryRow(context.Background(), "SELECT samples, bytes_received FROM kohaku_inbound_rtp_1m WHERE stats_id = 'IT-hand' AND bucket = $1", minute(1)).Scan(&samples, &bytes)
				if err != nil {
					t.Fatal(err)
				}
				return samples, bytes
			}
			if res.TimescaleDB {
				// Minute 1 was materialized: real-time aggregation does not read it again.
				if n, _ := readMinute1(); n != 1 {
					t.Fatalf("minute 1 has %d samples before the refresh, want the materialized 1", n)
				}
			}
			if err := RefreshAggregates(context.Background(), c, at(85), at(85)); err != nil {
				t.Fatalf("RefreshAggregates: %v", err)
			}
			if n, bytes := readMinute1(); n != 2 || bytes != 1_100_000-250_000 {
				t.Errorf("minute 1: %d samples, %d bytes, want 2 and %d", n, bytes, 1_100_000-250_000)
			}
		})
	}
}

func TestTimescaleDBMinuteAggregatesArePoliciedAndKeptByMigrate(t *testing.T) {
	c := freshConn(t, timescaleURL(t))
	opts := Options{RetainFor: 30 * day}.withDefaults()
	res := mustMigrate(t, c, opts)
	if !slices.Equal(res.ContinuousAggregates, aggregateNames()) {
		t.Fatalf("Result.ContinuousAggregates %v, want %v", res.ContinuousAggregates, aggregateNames())
	}
	before := readAggregates(t, c)
	checkAggregates(t, before, opts)

	res = mustMigrate(t, c, opts)
	if !slices.Equal(res.ContinuousAggregates, aggregateNames()) {
		t.Errorf("second run: Result.ContinuousAggregates %v", res.ContinuousAggregates)
	}
	again := readAggregates(t, c)
	if !maps.Equal(again, before) {
		t.Errorf("second run changed the continuous aggregates or their jobs:\n%v\nwas\n%v", again, before)
	}

	changed := Options{RetainFor: 90 * day}.withDefaults()
	mustMigrate(t, c, changed)
	after := readAggregates(t, c)
	checkAggregates(t, after, changed)
	for name, a := range after {
		if a.matID != before[name].matID || a.refreshJob != before[name].refreshJob {
			t.Errorf("%s was created again or its refresh job replaced when only the retention changed", name)
		}
	}

	// The test server has no scheduler: run the refresh policy as it would, on rows of
	// the last hour, inside its window.
	recent := handSeries()
	now := time.Now().Truncate(time.Minute)
	for i := range recent {
		for k := range recent[i].samples {
			recent[i].samples[k].at = now.Add(-time.Hour).Add(recent[i].samples[k].at.Sub(handStart))
		}
	}
	insertSeries(t, c, recent...)
	for _, a := range after {
		mustExec(t, c, "CALL "+timescaleExt(t, c)+".run_job($1::integer)", a.refreshJob)
	}
	checkMaterialized(t, c)
}

func TestTimescaleDBReplacesTheMinuteViewsOfAPlainDatabase(t *testing.T) {
	c := freshConn(t, timescaleURL(t))
	ctx := context.Background()
	// A database that ran on plain PostgreSQL, with data, before TimescaleDB came.
	if err := createMigrationsTable(ctx, c); err != nil {
		t.Fatal(err)
	}
	for _, m := range allMigrations(t) {
		if err := apply(ctx, c, m); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := configureAggregates(ctx, c, "", Options{}.withDefaults()); err != nil {
		t.Fatalf("plain minute views: %v", err)
	}
	insertSeries(t, c, handSeries()...)
	plain := query(t, c, "SELECT * FROM kohaku_inbound_rtp_1m ORDER BY bucket")

	res := mustMigrate(t, c, Options{})
	if !slices.Equal(res.ContinuousAggregates, aggregateNames()) {
		t.Fatalf("Result.ContinuousAggregates %v, want %v", res.ContinuousAggregates, aggregateNames())
	}
	// The rows stored before were materialized when the aggregates were created.
	checkMaterialized(t, c)
	if d := diffTables(query(t, c, "SELECT * FROM kohaku_inbound_rtp_1m ORDER BY bucket"), plain); d != "" {
		t.Errorf("the view changed when its minute layer became continuous aggregates:\n%s", d)
	}
}

func TestMigrateCreatesChangedOrMissingViewsAgain(t *testing.T) {
	for _, db := range databases {
		t.Run(db.name, func(t *testing.T) {
			c := freshConn(t, db.url(t))
			mustMigrate(t, c, Options{})
			insertSeries(t, c, handSeries()...)
			refreshAll(t, c)
			want := query(t, c, "SELECT * FROM kohaku_outbound_rtp_1m ORDER BY bucket")

			// An older definition of a minute aggregate, and a public view dropped by hand.
			mustExec(t, c, "COMMENT ON VIEW kohaku_outbound_rtp_1m_agg IS 'an older definition [kohaku definition 0000000000000000]'")
			mustExec(t, c, "DROP VIEW kohaku_inbound_rtp_1m")
			res := mustMigrate(t, c, Options{})
			ext := timescaleExt(t, c)
			for _, a := range minuteAggregates {
				r, err := readRelation(context.Background(), c, a.name, res.TimescaleDB)
				if err != nil {
					t.Fatal(err)
				}
				if r.fingerprint != a.definition(ext) || r.cagg != res.TimescaleDB {
					t.Errorf("%s after Migrate: %+v, want fingerprint %q", a.name, r, a.definition(ext))
				}
			}
			if res.TimescaleDB {
				// Created again, it was refreshed over the rows already stored.
				checkMaterialized(t, c)
			}
			if d := diffTables(query(t, c, "SELECT * FROM kohaku_outbound_rtp_1m ORDER BY bucket"), want); d != "" {
				t.Errorf("kohaku_outbound_rtp_1m after Migrate:\n%s", d)
			}
			var doc string
			err := c.QueryRow(context.Background(), `SELECT col_description(attrelid, attnum) FROM pg_attribute
WHERE attrelid = 'kohaku_inbound_rtp_1m'::regclass AND attname = 'bitrate'`).Scan(&doc)
			if err != nil || !strings.Contains(doc, "bits per second") {
				t.Errorf("the bitrate column's comment is %q (%v), want its documentation", doc, err)
			}
		})
	}
}

func TestMigrateDoesNotDropAViewThatDependsOnTheRTPViews(t *testing.T) {
	c := freshConn(t, postgresURL(t))
	mustMigrate(t, c, Options{})
	mustExec(t, c, "CREATE VIEW my_dashboard AS SELECT bucket, bitrate FROM kohaku_inbound_rtp_1m")
	mustExec(t, c, "COMMENT ON VIEW kohaku_inbound_rtp_1m IS 'an older definition [kohaku definition 0000000000000000]'")
	_, err := Migrate(context.Background(), c, Options{})
	if err == nil || !strings.Contains(err.Error(), "kohaku_inbound_rtp_1m") || !strings.Contains(err.Error(), "depend") {
		t.Fatalf("Migrate: %v, want an error that other objects depend on kohaku_inbound_rtp_1m", err)
	}
	if !tableExists(t, c, "my_dashboard") {
		t.Error("the operator's view was dropped")
	}
}

func TestRefreshAggregatesRejectsAnInvertedWindowBeforeConnecting(t *testing.T) {
	// A nil connection proves that nothing touches the database.
	err := RefreshAggregates(context.Background(), nil, at(60), at(0))
	if err == nil || !strings.Contains(err.Error(), "before") {
		t.Fatalf("RefreshAggregates: %v, want an error that the window is inverted", err)
	}
}

func TestRefreshWindowCoversWholeMinutes(t *testing.T) {
	tests := []struct {
		name             string
		from, to         time.Time
		wantFrom, wantTo *time.Time
	}{
		{name: "inside one minute", from: at(70), to: at(75), wantFrom: ptr(minute(1)), wantTo: ptr(minute(2))},
		{name: "on a minute's start", from: minute(1), to: minute(1), wantFrom: ptr(minute(1)), wantTo: ptr(minute(2))},
		{name: "over minutes", from: at(59), to: at(181), wantFrom: ptr(minute(0)), wantTo: ptr(minute(4))},
		{name: "open ends", wantFrom: nil, wantTo: nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			from, to := refreshWindow(tt.from, tt.to)
			if !sameTime(from, tt.wantFrom) || !sameTime(to, tt.wantTo) {
				t.Errorf("refreshWindow(%v, %v) = %v, %v; want %v, %v", tt.from, tt.to, from, to, tt.wantFrom, tt.wantTo)
			}
		})
	}
}

func TestMinuteLayerHasTheSameColumnsInBothForms(t *testing.T) {
	for _, a := range minuteAggregates {
		forms := map[string]string{"plain view": a.createSQL(""), "continuous aggregate": a.createSQL(`"public"`)}
		for form, sql := range forms {
			for _, col := range a.columns {
				if !regexp.MustCompile(` AS ` + col.name + `\b`).MatchString(sql) {
					t.Errorf("%s as a %s lacks %s:\n%s", a.name, form, col.name, sql)
				}
			}
		}
		if a.definition("") == a.definition(`"public"`) {
			t.Errorf("%s: both forms have the same fingerprint", a.name)
		}
	}
}

func ptr(t time.Time) *time.Time { return &t }

func sameTime(a, b *time.Time) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.Equal(*b)
}

// refreshAll refreshes every continuous aggregate over all rows and checks that they were
// materialized; without TimescaleDB it checks that RefreshAggregates does nothing.
func refreshAll(t testing.TB, c *pgx.Conn) {
	t.Helper()
	if err := RefreshAggregates(context.Background(), c, time.Time{}, time.Time{}); err != nil {
		t.Fatalf("RefreshAggregates: %v", err)
	}
	if timescaleExt(t, c) != "" {
		checkMaterialized(t, c)
	}
}

// checkMaterialized checks that each continuous aggregate that has rows holds them all in
// its materialization hypertable.
func checkMaterialized(t testing.TB, c *pgx.Conn) {
	t.Helper()
	for _, name := range aggregateNames() {
		var mat string
		err := c.QueryRow(context.Background(), `SELECT format('%I.%I', materialization_hypertable_schema, materialization_hypertable_name)
FROM timescaledb_information.continuous_aggregates WHERE view_schema = current_schema() AND view_name = $1`, name).Scan(&mat)
		if err != nil {
			t.Fatalf("%s is not a continuous aggregate: %v", name, err)
		}
		var materialized, all int
		if err := c.QueryRow(context.Background(), "SELECT (SELECT count(*) FROM "+mat+"), (SELECT count(*) FROM "+name+")").Scan(&materialized, &all); err != nil {
			t.Fatal(err)
		}
		if all == 0 || materialized != all {
			t.Errorf("%s: %d of %d rows materialized, want all of at least 1", name, materialized, all)
		}
	}
}

// timescaleExt returns the schema of the timescaledb functions, "" without TimescaleDB.
func timescaleExt(t testing.TB, c *pgx.Conn) string {
	t.Helper()
	ext, err := timescaleSchema(context.Background(), c)
	if err != nil {
		t.Fatal(err)
	}
	return ext
}

// compressRTPChunks compresses every chunk of the tables under the views.
func compressRTPChunks(t testing.TB, c *pgx.Conn) {
	t.Helper()
	ext := timescaleExt(t, c)
	for _, a := range minuteAggregates {
		var n int
		err := c.QueryRow(context.Background(), fmt.Sprintf("SELECT count(%[1]s.compress_chunk(ch)) FROM %[1]s.show_chunks($1::regclass) ch", ext), a.table).Scan(&n)
		if err != nil {
			t.Fatalf("compress chunks of %s: %v", a.table, err)
		}
		if n == 0 {
			t.Fatalf("%s has no chunk to compress", a.table)
		}
	}
}

func columnTypes(t testing.TB, c *pgx.Conn, name string) table {
	t.Helper()
	return query(t, c, `SELECT a.attname::text, format_type(a.atttypid, a.atttypmod)
FROM pg_attribute a WHERE a.attrelid = $1::regclass AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum`, name)
}

// aggregateState is what TimescaleDB reports for one continuous aggregate.
type aggregateState struct {
	matID                       int
	materializedOnly            bool
	refreshJob, retainJob       int
	startOffset, endOffset      time.Duration
	scheduleInterval, retainFor time.Duration
}

func readAggregates(t testing.TB, c *pgx.Conn) map[string]aggregateState {
	t.Helper()
	rows, err := c.Query(context.Background(), `SELECT ca.view_name::text,
	(SELECT id FROM _timescaledb_catalog.hypertable h WHERE h.schema_name = ca.materialization_hypertable_schema AND h.table_name = ca.materialization_hypertable_name),
	ca.materialized_only,
	coalesce(jr.job_id, 0), coalesce((jr.config->>'start_offset')::interval, '0'), coalesce((jr.config->>'end_offset')::interval, '0'), coalesce(jr.schedule_interval, '0'),
	coalesce(jd.job_id, 0), coalesce((jd.config->>'drop_after')::interval, '0')
FROM timescaledb_information.continuous_aggregates ca
LEFT JOIN timescaledb_information.jobs jr ON jr.hypertable_schema = ca.view_schema AND jr.hypertable_name = ca.view_name AND jr.proc_name = 'policy_refresh_continuous_aggregate'
LEFT JOIN timescaledb_information.jobs jd ON jd.hypertable_schema = ca.view_schema AND jd.hypertable_name = ca.view_name AND jd.proc_name = 'policy_retention'
WHERE ca.view_schema = current_schema()`)
	if err != nil {
		t.Fatalf("read continuous aggregates: %v", err)
	}
	got := map[string]aggregateState{}
	var name string
	var s aggregateState
	if _, err := pgx.ForEachRow(rows, []any{&name, &s.matID, &s.materializedOnly, &s.refreshJob, &s.startOffset, &s.endOffset, &s.scheduleInterval, &s.retainJob, &s.retainFor}, func() error {
		if _, dup := got[name]; dup {
			t.Errorf("continuous aggregate %s has more than one policy of a kind", name)
		}
		got[name] = s
		return nil
	}); err != nil {
		t.Fatalf("read continuous aggregates: %v", err)
	}
	return got
}

// checkAggregates checks that exactly the minute layer are continuous aggregates, with
// real-time aggregation, the refresh policy and the retention of opts.
func checkAggregates(t testing.TB, got map[string]aggregateState, opts Options) {
	t.Helper()
	if len(got) != len(minuteAggregates) {
		t.Errorf("%d continuous aggregates, want %d: %v", len(got), len(minuteAggregates), got)
	}
	for _, name := range aggregateNames() {
		s, ok := got[name]
		if !ok {
			t.Errorf("%s is not a continuous aggregate", name)
			continue
		}
		want := aggregateState{
			matID: s.matID, materializedOnly: false,
			refreshJob: s.refreshJob, startOffset: aggregateRefreshStart, endOffset: aggregateRefreshEnd, scheduleInterval: aggregateRefreshEvery,
			retainJob: s.retainJob, retainFor: opts.RetainFor,
		}
		if s != want || s.refreshJob == 0 || s.retainJob == 0 {
			t.Errorf("%s: got %+v, want %+v with both jobs", name, s, want)
		}
	}
}
