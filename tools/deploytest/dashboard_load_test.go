package deploytest

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"kohaku/schema"
	"kohaku/testsupport/dbtest"
)

// A synthetic load for timing the Connection dashboard: conns connections, 10 per channel,
// each reporting every `every` for `span`, made in SQL by INSERT ... SELECT over
// generate_series (the simulator would take hours for the 2 million reports of the full
// size). Each report stores what a browser in a call sends and receives: an audio and a
// video stream each way with the receiving end's reports on them, the sender's report on
// the received audio, two codecs, the transport, the selected candidate pair and its two
// candidates: 13 rows. The counters grow steadily; the figures are plausible, not varied.

// loadGrid is the FROM clause shared by the load's statements: one row per report r and
// connection c, in the order the writer would store them (time, then connection), with the
// report time t and the connection's ids. $1 connections, $2 reports, $3 first report time,
// $4 seconds between reports.
const loadGrid = `FROM generate_series(0::bigint, $2::bigint - 1) r
CROSS JOIN generate_series(0, $1::int - 1) c
CROSS JOIN LATERAL (SELECT $3::timestamptz + r * $4::double precision * interval '1 second' AS t,
	'C' || lpad(c::text, 25, '0') AS conn, 'bench-' || (c / 10) AS ch, 'S' || lpad((c / 10)::text, 25, '0') AS se) g`

// loadStatements fill the tables that the Connection dashboard reads.
var loadStatements = []string{
	`INSERT INTO sora_connection (connection_id, channel_id, session_id, client_id, role, multistream, simulcast, spotlight,
	label, version, node_name, first_seen, last_seen, feed)
SELECT 'C' || lpad(c::text, 25, '0'), 'bench-' || (c / 10), 'S' || lpad((c / 10)::text, 25, '0'), 'client-' || c, 'sendrecv',
	true, false, false, 'WebRTC SFU Sora', '2025.1.0', 'sora@127.0.0.1', $3::timestamptz,
	$3::timestamptz + ($2::int - 1) * $4::double precision * interval '1 second', 'webhook'
FROM generate_series(0, $1::int - 1) c`,

	`INSERT INTO rtc_inbound_rtp_stats (time, channel_id, session_id, connection_id, stats_id, stats_timestamp, kind, ssrc, codec_id,
	bytes_received, packets_received, packets_lost, jitter, frames_per_second, frame_width, frame_height, frames_decoded,
	frames_dropped, freeze_count, total_freezes_duration, pause_count, total_pauses_duration, concealed_samples,
	total_samples_received, jitter_buffer_delay, jitter_buffer_emitted_count, audio_level, nack_count, pli_count, fir_count,
	total_decode_time, decoder_implementation)
SELECT g.t, g.ch, g.se, g.conn, s.id, extract(epoch FROM g.t) * 1000, s.kind, s.ssrc, s.codec,
	r * s.bytes, r * s.packets, r * s.packets / 200, 0.004 + (c % 10) * 0.003,
	CASE WHEN s.video THEN 30 - (r % 3) END, CASE WHEN s.video THEN 1280 END, CASE WHEN s.video THEN 720 END,
	CASE WHEN s.video THEN r * 300 END, CASE WHEN s.video THEN r / 20 END, CASE WHEN s.video THEN r / 100 END,
	CASE WHEN s.video THEN r / 100 * 0.4 END, CASE WHEN s.video THEN 0 END, CASE WHEN s.video THEN 0.0 END,
	CASE WHEN NOT s.video THEN r * 2400 END, CASE WHEN NOT s.video THEN r * 480000 END,
	r * CASE WHEN s.video THEN 6.0 ELSE 28800.0 END, r * CASE WHEN s.video THEN 300 ELSE 480000 END,
	CASE WHEN NOT s.video THEN 0.1 + (r % 10) * 0.05 END,
	r * 2, CASE WHEN s.video THEN r / 10 END, CASE WHEN s.video THEN 0 END,
	CASE WHEN s.video THEN r * 1.5 END, CASE WHEN s.video THEN 'libvpx' END
` + loadGrid + `
CROSS JOIN (VALUES ('IT-audio', 'audio', 1001, 'CI-audio', 40000, 500, false),
	('IT-video', 'video', 2001, 'CI-video', 1250000, 1100, true)) s(id, kind, ssrc, codec, bytes, packets, video)
ORDER BY r, c`,

	`INSERT INTO rtc_outbound_rtp_stats (time, channel_id, session_id, connection_id, stats_id, stats_timestamp, kind, ssrc, codec_id, mid,
	bytes_sent, packets_sent, frames_per_second, frame_width, frame_height, frames_encoded, total_encode_time, nack_count, pli_count,
	fir_count, quality_limitation_reason, quality_limitation_durations, retransmitted_bytes_sent, target_bitrate,
	encoder_implementation, scalability_mode)
SELECT g.t, g.ch, g.se, g.conn, s.id, extract(epoch FROM g.t) * 1000, s.kind, s.ssrc, s.codec, s.mid,
	r * s.bytes, r * s.packets, CASE WHEN s.video THEN 30 END, CASE WHEN s.video THEN 1280 END, CASE WHEN s.video THEN 720 END,
	CASE WHEN s.video THEN r * 300 END, CASE WHEN s.video THEN r * 2.0 END, r * 2, CASE WHEN s.video THEN r / 10 END,
	CASE WHEN s.video THEN 0 END, CASE WHEN s.video THEN 'none' END,
	CASE WHEN s.video THEN jsonb_build_object('none', r * $4::double precision * 0.9, 'cpu', r * $4::double precision * 0.1, 'bandwidth', 0, 'other', 0) END,
	r * s.bytes / 100, CASE WHEN s.video THEN 1000000 ELSE 40000 END,
	CASE WHEN s.video THEN 'libvpx' ELSE 'opus' END, CASE WHEN s.video THEN 'L1T1' END
` + loadGrid + `
CROSS JOIN (VALUES ('OT-audio', 'audio', 3001, 'CO-audio', '0', 40000, 500, false),
	('OT-video', 'video', 4001, 'CO-video', '1', 1250000, 1100, true)) s(id, kind, ssrc, codec, mid, bytes, packets, video)
ORDER BY r, c`,

	`INSERT INTO rtc_remote_inbound_rtp_stats (time, channel_id, session_id, connection_id, stats_id, stats_timestamp, kind, ssrc,
	local_id, packets_lost, jitter, round_trip_time, total_round_trip_time, round_trip_time_measurements, fraction_lost)
SELECT g.t, g.ch, g.se, g.conn, s.id, extract(epoch FROM g.t) * 1000, s.kind, s.ssrc, s.local_id,
	r * s.packets / 100, 0.003 + (c % 10) * 0.002, 0.05 + (c % 20) * 0.02, r * 5 * (0.05 + (c % 20) * 0.02), r * 5, 0.01
` + loadGrid + `
CROSS JOIN (VALUES ('RI-audio', 'audio', 3001, 'OT-audio', 500), ('RI-video', 'video', 4001, 'OT-video', 1100)) s(id, kind, ssrc, local_id, packets)
ORDER BY r, c`,

	`INSERT INTO rtc_remote_outbound_rtp_stats (time, channel_id, session_id, connection_id, stats_id, stats_timestamp, kind, ssrc,
	local_id, packets_sent, bytes_sent, round_trip_time, total_round_trip_time, round_trip_time_measurements)
SELECT g.t, g.ch, g.se, g.conn, 'RO-audio', extract(epoch FROM g.t) * 1000, 'audio', 1001, 'IT-audio',
	r * 500, r * 40000, 0.05 + (c % 20) * 0.02, r * (0.05 + (c % 20) * 0.02), r
` + loadGrid + `
ORDER BY r, c`,

	`INSERT INTO rtc_codec_stats (time, channel_id, session_id, connection_id, stats_id, stats_timestamp, payload_type, mime_type, clock_rate)
SELECT g.t, g.ch, g.se, g.conn, s.id, extract(epoch FROM g.t) * 1000, s.pt, s.mime, s.rate
` + loadGrid + `
CROSS JOIN (VALUES ('CI-audio', 111, 'audio/opus', 48000), ('CI-video', 96, 'video/VP8', 90000)) s(id, pt, mime, rate)
ORDER BY r, c`,

	`INSERT INTO rtc_transport_stats (time, channel_id, session_id, connection_id, stats_id, stats_timestamp, bytes_sent, bytes_received,
	packets_sent, packets_received, dtls_state, ice_state, selected_candidate_pair_id, selected_candidate_pair_changes)
SELECT g.t, g.ch, g.se, g.conn, 'T01', extract(epoch FROM g.t) * 1000, r * 1300000, r * 1300000, r * 1600, r * 1600,
	'connected', 'connected', 'CP01', 1
` + loadGrid + `
ORDER BY r, c`,

	`INSERT INTO rtc_candidate_pair_stats (time, channel_id, session_id, connection_id, stats_id, stats_timestamp, transport_id,
	local_candidate_id, remote_candidate_id, state, nominated, bytes_sent, bytes_received, packets_sent, packets_received,
	total_round_trip_time, current_round_trip_time, available_outgoing_bitrate)
SELECT g.t, g.ch, g.se, g.conn, 'CP01', extract(epoch FROM g.t) * 1000, 'T01', 'IL01', 'IR01', 'succeeded', true,
	r * 1300000, r * 1300000, r * 1600, r * 1600, r * 0.5, 0.05 + (c % 20) * 0.02, 2500000
` + loadGrid + `
ORDER BY r, c`,

	`INSERT INTO rtc_ice_candidate_stats (time, channel_id, session_id, connection_id, stats_id, stats_type, stats_timestamp,
	transport_id, address, port, protocol, candidate_type)
SELECT g.t, g.ch, g.se, g.conn, s.id, s.typ, extract(epoch FROM g.t) * 1000, 'T01', s.address, 50000 + c % 10000, 'udp', 'host'
` + loadGrid + `
CROSS JOIN (VALUES ('IL01', 'local-candidate', '192.0.2.1'), ('IR01', 'remote-candidate', '198.51.100.1')) s(id, typ, address)
ORDER BY r, c`,
}

// dashboardLoad is the size of a synthetic load.
type dashboardLoad struct {
	conns int
	span  time.Duration
	every time.Duration
	end   time.Time // time of the last report, a whole minute
}

func (l dashboardLoad) reports() int { return int(l.span / l.every) }
func (l dashboardLoad) start() time.Time {
	return l.end.Add(-time.Duration(l.reports()-1) * l.every)
}

// load migrates the database of conn and stores l, then refreshes the minute aggregates
// (TimescaleDB only) and the planner's statistics, and analyzes it (issues and scores).
func (l dashboardLoad) load(ctx context.Context, conn *pgx.Conn) (analysis time.Duration, err error) {
	if _, err := schema.Migrate(ctx, conn, schema.Options{}); err != nil {
		return 0, fmt.Errorf("migrate: %w", err)
	}
	// Nothing here needs to survive a crash of the server.
	if _, err := conn.Exec(ctx, "SET synchronous_commit = off"); err != nil {
		return 0, err
	}
	for _, sql := range loadStatements {
		if _, err := conn.Exec(ctx, sql, l.conns, l.reports(), l.start(), l.every.Seconds()); err != nil {
			return 0, fmt.Errorf("load: %w\n%s", err, sql)
		}
	}
	if err := schema.RefreshAggregates(ctx, conn, time.Time{}, time.Time{}); err != nil {
		return 0, fmt.Errorf("refresh aggregates: %w", err)
	}
	if _, err := conn.Exec(ctx, "ANALYZE"); err != nil {
		return 0, fmt.Errorf("analyze: %w", err)
	}
	// Issues and scores as the writer's analysis leaves them, an hour per run as
	// kohaku-writer analyze goes.
	start := time.Now()
	for from := l.start(); !from.After(l.end); from = from.Add(time.Hour) {
		until := from.Add(time.Hour)
		if until.After(l.end) {
			until = l.end.Add(time.Second)
		}
		if _, err := schema.Analyze(ctx, conn, from, until); err != nil {
			return 0, err
		}
	}
	return time.Since(start), nil
}

// queryTiming is how long one query of a dashboard took.
type queryTiming struct {
	name string
	rows int
	took time.Duration
}

// timeDashboard runs every SQL query of the dashboard uid, its variables' queries included,
// over [from, to] with the variables set to vars, as Grafana would, each `runs` times, and
// returns the slowest run of each.
func timeDashboard(t testing.TB, conn *pgx.Conn, uid string, vars map[string]variableValue, from, to time.Time, runs int) []queryTiming {
	t.Helper()
	d := dashboardByUID(t, uid)
	qc := queryContext{from: from, to: to, interval: panelInterval(from, to, postgresMinInterval(t))}
	qc.vars = vars
	var out []queryTiming
	measure := func(name, sql, format string) {
		qt := queryTiming{name: uid + ": " + name}
		for range runs {
			start := time.Now()
			res := runPanelQuery(t, conn, qc, sql)
			qt.took = max(qt.took, time.Since(start))
			qt.rows = len(res.rows)
			checkShape(t, res, format)
		}
		out = append(out, qt)
	}
	for _, v := range d.Templating.List {
		measure("variable "+v.Name, v.sql(), "table")
	}
	for _, pt := range d.targets() {
		if pt.isSQL() {
			measure(pt.name(), pt.target.RawSQL, pt.target.Format)
		}
	}
	return out
}

// timeCallDashboards times the Connection and Call quality dashboards for connection c of
// the load, its channel and its session selected.
func timeCallDashboards(t testing.TB, conn *pgx.Conn, c int, from, to time.Time, runs int) []queryTiming {
	t.Helper()
	one := func(v string) variableValue { return variableValue{values: []string{v}} }
	connID := fmt.Sprintf("C%025d", c)
	out := timeDashboard(t, conn, "kohaku-connection", map[string]variableValue{"connection_id": one(connID)}, from, to, runs)
	return append(out, timeDashboard(t, conn, "kohaku-call-quality", map[string]variableValue{
		"channel_id":    {values: []string{fmt.Sprintf("bench-%d", c/10)}, list: true},
		"session_id":    one(fmt.Sprintf("S%025d", c/10)),
		"connection_id": one(connID),
	}, from, to, runs)...)
}

func TestDashboardLoadFeedsEveryConnectionQuery(t *testing.T) {
	conn, err := pgx.Connect(t.Context(), dbtest.Database(t))
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	l := dashboardLoad{conns: 20, span: 30 * time.Minute, every: 10 * time.Second, end: time.Now().UTC().Truncate(time.Minute)}
	if _, err := l.load(t.Context(), conn); err != nil {
		t.Fatal(err)
	}
	var rows int
	if err := conn.QueryRow(t.Context(), "SELECT count(*) FROM rtc_inbound_rtp_stats").Scan(&rows); err != nil {
		t.Fatal(err)
	}
	if want := l.conns * l.reports() * 2; rows != want {
		t.Fatalf("%d inbound-rtp rows, want %d", rows, want)
	}
	// Both branches of the range-picking queries: reports, then minutes.
	for _, span := range []time.Duration{20 * time.Minute, 12 * time.Hour} {
		// Connection 9 of each ten has the highest jitter, over the high_jitter warning.
		for _, qt := range timeCallDashboards(t, conn, 9, l.end.Add(-span), l.end, 1) {
			if qt.rows == 0 {
				t.Errorf("%s over %s: no rows", qt.name, span)
			}
		}
	}
}

// BenchmarkConnectionDashboardQueries times every SQL query of the Connection and Call
// quality dashboards for one connection over 6 hours (per-report views) and 24 hours
// (minute views) of a synthetic load, analyzed as the writer would, by default 1,000 connections reporting every 10 s for 6 hours, on the server of
// KOHAKU_TEST_DATABASE_URL. KOHAKU_BENCH_CONNECTIONS and KOHAKU_BENCH_HOURS change the size.
// It fails when a query takes 1 s or longer. Run it once:
//
//	go test -run '^$' -bench ConnectionDashboardQueries -benchtime 1x -timeout 1h ./tools/deploytest/
func BenchmarkConnectionDashboardQueries(b *testing.B) {
	l := dashboardLoad{conns: envInt(b, "KOHAKU_BENCH_CONNECTIONS", 1000), every: 10 * time.Second,
		span: time.Duration(envInt(b, "KOHAKU_BENCH_HOURS", 6)) * time.Hour, end: time.Now().UTC().Truncate(time.Minute)}
	conn, err := pgx.Connect(b.Context(), dbtest.Database(b))
	if err != nil {
		b.Fatalf("connect: %v", err)
	}
	b.Cleanup(func() { conn.Close(context.Background()) })
	start := time.Now()
	analysis, err := l.load(b.Context(), conn)
	if err != nil {
		b.Fatal(err)
	}
	reports := l.conns * l.reports()
	b.Logf("loaded %d connections × %d reports in %s, of which analysis (issues and scores) %s: %.0f reports/s",
		l.conns, l.reports(), time.Since(start).Round(time.Second), analysis.Round(time.Millisecond), float64(reports)/analysis.Seconds())
	b.ReportMetric(float64(reports)/analysis.Seconds(), "analyzed-reports/s")
	var slowest time.Duration
	for b.Loop() {
		for _, span := range []time.Duration{6 * time.Hour, 24 * time.Hour} {
			timings := timeCallDashboards(b, conn, l.conns/2+9, l.end.Add(-span), l.end, 3)
			slices.SortFunc(timings, func(x, y queryTiming) int { return int(y.took - x.took) })
			var report strings.Builder
			for _, qt := range timings {
				fmt.Fprintf(&report, "\n%8.1f ms %6d rows  %s", float64(qt.took.Microseconds())/1000, qt.rows, qt.name)
				if qt.took >= time.Second {
					b.Errorf("%s over %s took %s, want under 1 s", qt.name, span, qt.took)
				}
				slowest = max(slowest, qt.took)
			}
			b.Logf("Connection and Call quality dashboards over %s, slowest run of 3 per query:%s", span, report.String())
		}
	}
	b.ReportMetric(float64(slowest.Microseconds())/1000, "slowest-ms")
}

// envInt reads a positive integer from the environment variable name, def when unset.
func envInt(t testing.TB, name string, def int) int {
	s := os.Getenv(name)
	if s == "" {
		return def
	}
	n, err := strconv.Atoi(s)
	if err != nil || n <= 0 {
		t.Fatalf("%s=%q: want a positive integer", name, s)
	}
	return n
}
