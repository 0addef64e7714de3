package schema

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// historyObjects are the stats objects of every connection of storeHistory, with the
// columns the analysis reads, as SQL over the report number i.
var historyObjects = []struct {
	table, statsID, cols, vals string
}{
	{"rtc_inbound_rtp_stats", "IA", "kind, packets_received, packets_lost, jitter", "'audio', 500 * i, 0, 0.005"},
	{"rtc_outbound_rtp_stats", "OV", "kind, packets_sent, frames_encoded", "'video', 1000 * i, 300 * i"},
	{"rtc_remote_inbound_rtp_stats", "RV", "kind, local_id, fraction_lost, round_trip_time", "'video', 'OV', 0, 0.05"},
	{"rtc_transport_stats", "T", "ice_state, dtls_state, selected_candidate_pair_id", "'connected', 'connected', 'CP1'"},
	{"rtc_candidate_pair_stats", "CP1", "local_candidate_id, state, nominated, current_round_trip_time", "'L1', 'succeeded', true, 0.05"},
	{"rtc_ice_candidate_stats", "L1", "stats_type, candidate_type, protocol", "'local-candidate', 'host', 'udp'"},
	{"rtc_peer_connection_stats", "P", "data_channels_opened", "1"},
}

// storeHistory stores, for each of conns connections, n reports every reportEvery from
// issueBase on: one row per object of historyObjects.
func storeHistory(t testing.TB, c *pgx.Conn, conns, n int) {
	t.Helper()
	for _, o := range historyObjects {
		mustExec(t, c, fmt.Sprintf(`INSERT INTO %s (time, channel_id, session_id, connection_id, stats_id, stats_timestamp, %s)
SELECT $1::timestamptz + i * $2::interval, 'ch-history', 'se-' || k, 'conn-history-' || k, '%s',
    1000 * extract(epoch FROM $1::timestamptz + i * $2::interval), %s
FROM generate_series(1, $3::int) k, generate_series(0, $4::int - 1) i`, o.table, o.cols, o.statsID, o.vals),
			issueBase, reportEvery, conns, n)
		mustExec(t, c, "ANALYZE "+o.table)
	}
}

// rowsRead returns, per table of historyObjects, the rows that sequential and index scans
// have read from it, as the statistics system counts them.
func rowsRead(t testing.TB, c *pgx.Conn) map[string]int64 {
	t.Helper()
	ctx := context.Background()
	// A backend's counts reach the shared statistics at the end of a transaction, at
	// most once a second unless asked.
	mustExec(t, c, "SELECT pg_stat_force_next_flush()")
	mustExec(t, c, "SELECT pg_stat_clear_snapshot()")
	rows, err := c.Query(ctx, `SELECT relname, coalesce(seq_tup_read, 0) + coalesce(idx_tup_fetch, 0)
FROM pg_stat_user_tables WHERE schemaname = current_schema()`)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int64{}
	for rows.Next() {
		var name string
		var n int64
		if err := rows.Scan(&name, &n); err != nil {
			t.Fatal(err)
		}
		out[name] = n
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// The live analysis runs every 30 s over the last seconds of a database that holds days
// of reports: what a run reads must grow with its period, not with the history. Each
// table is read several times (the issues' sources, the scores' rates, the video
// reference of the four minutes before), so the bound is a multiple of the rows of the
// last ten minutes; the history is made long enough that reading any table whole once
// passes it. An earlier version joined the transports of the period with the candidate
// pairs and candidates by hashing the whole tables.
func TestAnalyzeReadsItsPeriodNotTheHistory(t *testing.T) {
	const (
		conns    = 100
		reports  = 2000 // 5.5 hours every 10 s
		readsMax = 12   // times the rows of the last ten minutes
	)
	conn := freshConn(t, postgresURL(t))
	mustMigrate(t, conn, Options{})
	storeHistory(t, conn, conns, reports)

	until := issueBase.Add((reports - 1) * reportEvery)
	since := until.Add(-time.Minute)
	recent := int64(conns) * int64(10*time.Minute/reportEvery)
	if bound := readsMax * recent; bound >= conns*reports {
		t.Fatalf("a bound of %d rows read would not tell a read of a whole table (%d rows)", bound, conns*reports)
	}
	before := rowsRead(t, conn)
	if _, err := Analyze(context.Background(), conn, since, until); err != nil {
		t.Fatal(err)
	}
	after := rowsRead(t, conn)
	for _, o := range historyObjects {
		read := after[o.table] - before[o.table]
		t.Logf("%s: %d rows read, %.1f times the last ten minutes'", o.table, read, float64(read)/float64(recent))
		if read > readsMax*recent {
			t.Errorf("%s: analyzing one minute read %d rows, more than %d times the %d rows of the last ten minutes (the table holds %d)",
				o.table, read, readsMax, recent, conns*reports)
		}
	}
}

// The periodic analysis cuts its period by connections, a transaction each
// (AnalyzeConnections): every set of connections must get the rows that one run for all of
// them gives, and leave the other connections' rows as they are. The hand-made calls of
// the issue tests and the scored connections of the score tests, cut one connection a set,
// in sets of three and in sets that also hold ids without reports.
func TestAnalyzeConnectionsGivesTheRowsOfOneRun(t *testing.T) {
	for _, db := range databases {
		t.Run(db.name, func(t *testing.T) {
			c := freshConn(t, db.url(t))
			mustMigrate(t, c, Options{})
			for _, tc := range issueCases() {
				tc.call.store(t, c)
			}
			insertSeries(t, c, scoreSeries()...)
			longSeries(t, c)
			periods := [][2]time.Time{
				{issueBase.Add(-time.Minute), issueBase.Add(5 * time.Minute)},
				{at(-7200), minute(2)},
			}
			for _, p := range periods {
				if _, err := Analyze(context.Background(), c, p[0], p[1]); err != nil {
					t.Fatal(err)
				}
			}
			whole := snapshotAnalysis(t, c)
			ids := connectionIDs(t, c)
			if len(ids) < 10 {
				t.Fatalf("%d connections with reports, want the hand-made ones", len(ids))
			}
			for _, sets := range [][][]string{
				chunk(ids, 1),
				chunk(ids, 3),
				chunk(append([]string{`no "such" \connection`, "conn-none"}, ids...), 4),
			} {
				clearAnalysis(t, c)
				for _, p := range periods {
					for _, set := range sets {
						if _, err := AnalyzeConnections(context.Background(), c, p[0], p[1], set); err != nil {
							t.Fatal(err)
						}
					}
				}
				if got := snapshotAnalysis(t, c); got != whole {
					t.Errorf("in %d sets of connections: %s", len(sets), firstDifference(got, whole))
				}
			}
			// One set analyzed again, or none, changes nothing of the others.
			for _, set := range [][]string{ids[:1], {}} {
				for _, p := range periods {
					if _, err := AnalyzeConnections(context.Background(), c, p[0], p[1], set); err != nil {
						t.Fatal(err)
					}
				}
				if got := snapshotAnalysis(t, c); got != whole {
					t.Errorf("after analyzing %q again: %s", set, firstDifference(got, whole))
				}
			}
		})
	}
}

// snapshotAnalysis returns the issue intervals and scores, without ids and analysis
// times, as text.
func snapshotAnalysis(t testing.TB, c *pgx.Conn) string {
	t.Helper()
	var issues []byte
	err := c.QueryRow(context.Background(), `SELECT jsonb_agg(to_jsonb(i) - 'id' - 'analyzed_at'
    ORDER BY connection_id, stats_id, kind, started_at) FROM kohaku_issue i`).Scan(&issues)
	if err != nil {
		t.Fatal(err)
	}
	return string(issues) + "\n" + snapshotScores(t, c)
}

// clearAnalysis deletes what the analysis wrote.
func clearAnalysis(t testing.TB, c *pgx.Conn) {
	t.Helper()
	for _, table := range []string{"kohaku_issue", "kohaku_stream_score", "kohaku_connection_score"} {
		mustExec(t, c, "DELETE FROM "+table)
	}
}

// connectionIDs returns the connections that have stats rows, in order.
func connectionIDs(t testing.TB, c *pgx.Conn) []string {
	t.Helper()
	var parts []string
	for _, table := range []string{"rtc_inbound_rtp_stats", "rtc_outbound_rtp_stats", "rtc_remote_inbound_rtp_stats",
		"rtc_transport_stats", "rtc_candidate_pair_stats", "rtc_peer_connection_stats"} {
		parts = append(parts, "SELECT connection_id FROM "+table)
	}
	return textColumn(t, c, "SELECT DISTINCT connection_id FROM ("+strings.Join(parts, " UNION ALL ")+") x ORDER BY 1")
}

// chunk cuts ss into slices of n.
func chunk(ss []string, n int) [][]string {
	var out [][]string
	for len(ss) > n {
		out = append(out, ss[:n])
		ss = ss[n:]
	}
	return append(out, ss)
}

// firstDifference shows where got and want, long texts, first differ.
func firstDifference(got, want string) string {
	i := 0
	for i < len(got) && i < len(want) && got[i] == want[i] {
		i++
	}
	from := max(0, i-400)
	return fmt.Sprintf("at byte %d, got\n\t...%s\nwant\n\t...%s", i, got[from:min(len(got), i+200)], want[from:min(len(want), i+200)])
}
