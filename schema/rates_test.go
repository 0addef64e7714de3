package schema

import (
	"context"
	"strconv"
	"strings"
	"testing"
)

// The per-report rate views (views/kohaku_*_rates.sql) read the stats tables directly, so
// they need no refresh and must give the same numbers on both kinds of server.

// rateViews are the per-report views and the stats tables they read first.
var rateViews = []string{"kohaku_inbound_rtp_rates", "kohaku_outbound_rtp_rates", "kohaku_remote_inbound_rtp_rates"}

// rateSeries are streams of one connection whose per-report figures the tests know
// exactly. Reports come every 10 s; the one at 20 s is missing, and at 40 s the streams
// start again (their packet and byte counters go down). Each loss counter goes down by
// itself once, at 30 s, which is no reset.
func rateSeries() []series {
	qld := func(none, cpu, bandwidth, other float64) map[string]any {
		return map[string]any{"none": none, "cpu": cpu, "bandwidth": bandwidth, "other": other}
	}
	return []series{
		{
			table: "rtc_inbound_rtp_stats", connectionID: "conn-rates", statsID: "IT-video",
			cols: []string{"kind", "ssrc", "bytes_received", "packets_received", "packets_lost", "jitter",
				"frames_per_second", "frame_width", "frame_height", "frames_decoded", "frames_dropped",
				"freeze_count", "total_freezes_duration", "pause_count", "total_pauses_duration",
				"jitter_buffer_delay", "jitter_buffer_emitted_count", "nack_count", "pli_count", "fir_count", "total_decode_time"},
			samples: []sample{
				{at(0), []any{"video", int64(1), int64(0), int64(0), int64(0), 0.01, 30.0, int64(640), int64(480), int64(0), int64(0), int64(0), 0.0, int64(0), 0.0, 0.0, int64(0), int64(0), int64(0), int64(0), 0.0}},
				// No framesPerSecond: frames decoded over the interval instead.
				{at(10), []any{"video", int64(1), int64(125_000), int64(900), int64(100), 0.02, nil, int64(1280), int64(720), int64(300), int64(3), int64(1), 0.5, int64(0), 0.0, 6.0, int64(300), int64(20), int64(2), int64(0), 1.5}},
				{at(30), []any{"video", int64(1), int64(375_000), int64(2900), int64(95), 0.03, 25.0, int64(1280), int64(720), int64(800), int64(3), int64(1), 0.5, int64(1), 2.0, 16.0, int64(800), int64(20), int64(2), int64(1), 4.0}},
				{at(40), []any{"video", int64(1), int64(50_000), int64(400), int64(4), 0.04, 30.0, int64(1280), int64(720), int64(250), int64(1), int64(0), 0.0, int64(0), 0.0, 5.0, int64(250), int64(5), int64(1), int64(0), 1.0}},
			},
		},
		{
			table: "rtc_inbound_rtp_stats", connectionID: "conn-rates", statsID: "IT-audio",
			cols: []string{"kind", "ssrc", "bytes_received", "packets_received", "packets_lost", "jitter", "audio_level",
				"concealed_samples", "total_samples_received", "jitter_buffer_delay", "jitter_buffer_emitted_count"},
			samples: []sample{
				{at(0), []any{"audio", int64(2), int64(0), int64(0), int64(0), 0.005, 0.1, int64(0), int64(0), 0.0, int64(0)}},
				{at(10), []any{"audio", int64(2), int64(40_000), int64(500), int64(0), 0.006, 0.2, int64(4_800), int64(480_000), 28_800.0, int64(480_000)}},
				{at(30), []any{"audio", int64(2), int64(120_000), int64(1500), int64(0), 0.007, 0.3, int64(14_400), int64(1_440_000), 76_800.0, int64(1_440_000)}},
				{at(40), []any{"audio", int64(2), int64(8_000), int64(100), int64(0), 0.008, 0.4, int64(960), int64(48_000), 4_800.0, int64(48_000)}},
			},
		},
		{
			table: "rtc_outbound_rtp_stats", connectionID: "conn-rates", statsID: "OT-video",
			cols: []string{"kind", "ssrc", "rid", "bytes_sent", "packets_sent", "frames_per_second", "frame_width", "frame_height",
				"frames_encoded", "total_encode_time", "nack_count", "pli_count", "fir_count",
				"quality_limitation_reason", "quality_limitation_durations", "retransmitted_bytes_sent", "target_bitrate"},
			samples: []sample{
				{at(0), []any{"video", int64(3), "r0", int64(0), int64(0), 30.0, int64(640), int64(360), int64(0), 0.0, int64(0), int64(0), int64(0), "none", qld(0, 0, 0, 0), int64(0), 1e6}},
				{at(10), []any{"video", int64(3), "r0", int64(125_000), int64(1000), 30.0, int64(640), int64(360), int64(300), 1.5, int64(10), int64(1), int64(0), "cpu", qld(6, 4, 0, 0), int64(5_000), 1e6}},
				{at(30), []any{"video", int64(3), "r0", int64(375_000), int64(3000), nil, int64(320), int64(180), int64(700), 3.5, int64(10), int64(1), int64(1), "bandwidth", qld(6, 9, 15, 0), int64(5_000), 5e5}},
				{at(40), []any{"video", int64(3), "r0", int64(25_000), int64(200), 30.0, int64(320), int64(180), int64(100), 0.4, int64(2), int64(0), int64(0), "bandwidth", qld(2, 0, 8, 0), int64(0), 5e5}},
			},
		},
		{
			// The receiving end's reports of OT-video, in the same reports, and one more
			// at 50 s whose report lacks OT-video.
			table: "rtc_remote_inbound_rtp_stats", connectionID: "conn-rates", statsID: "RI-video",
			cols: []string{"kind", "ssrc", "local_id", "packets_lost", "total_round_trip_time", "round_trip_time_measurements", "round_trip_time", "fraction_lost", "jitter"},
			samples: []sample{
				{at(0), []any{"video", int64(3), "OT-video", int64(0), 0.05, int64(1), 0.05, 0.0, 0.001}},
				{at(10), []any{"video", int64(3), "OT-video", int64(50), 0.45, int64(5), 0.1, 0.05, 0.002}},
				{at(30), []any{"video", int64(3), "OT-video", int64(48), 1.05, int64(9), 0.2, 0.0, 0.003}},
				{at(40), []any{"video", int64(3), "OT-video", int64(10), 0.6, int64(2), 0.3, 0.1, 0.004}},
				{at(50), []any{"video", int64(3), "OT-video", int64(30), 1.0, int64(4), 0.2, 0.08, 0.005}},
			},
		},
	}
}

func TestRateViewsComputeEachReportOfTheHandMadeSeries(t *testing.T) {
	const (
		video    = "time, interval_seconds, counter_reset, bytes_received, packets_received, packets_lost, bitrate, packets_per_second, loss_percent, jitter, frames_per_second, frame_width, frame_height, frames_decoded, frames_dropped, freeze_count, freeze_duration, pause_count, total_pauses_duration, jitter_buffer_delay, nack_per_second, pli_per_second, fir_per_second, decode_time_per_frame"
		audio    = "time, interval_seconds, counter_reset, bitrate, packets_per_second, loss_percent, jitter, audio_level, concealment_percent, jitter_buffer_delay"
		outbound = "time, interval_seconds, counter_reset, bytes_sent, packets_sent, bitrate, packets_per_second, frames_per_second, frame_width, frame_height, frames_encoded, encode_time_per_frame, nack_per_second, pli_per_second, fir_per_second, quality_limitation_reason, quality_limitation_cpu_share, quality_limitation_bandwidth_share, quality_limitation_other_share, retransmitted_bitrate, target_bitrate"
		remote   = "time, interval_seconds, counter_reset, round_trip_time, fraction_lost, packets_lost, packets_sent, loss_percent, loss_percent_source, jitter"
	)
	tests := []struct {
		name string
		sql  string
		want [][]any
	}{
		{
			name: "inbound video",
			sql:  "SELECT " + video + " FROM kohaku_inbound_rtp_rates WHERE connection_id = 'conn-rates' AND stats_id = 'IT-video' ORDER BY time",
			want: [][]any{
				// The first report has nothing to compare with: gauges only.
				{at(0), nil, false, nil, nil, nil, nil, nil, nil, 0.01, 30.0, int64(640), int64(480), nil, nil, nil, nil, nil, nil, nil, nil, nil, nil, nil},
				// No framesPerSecond: 300 frames decoded in 10 s.
				{at(10), 10.0, false, int64(125_000), int64(900), int64(100), 100_000.0, 90.0, 10.0, 0.02, 30.0, int64(1280), int64(720), int64(300), int64(3), int64(1), 0.5, int64(0), 0.0, 0.02, 2.0, 0.2, 0.0, 0.005},
				// The report at 20 s is missing: 20 s covered. packetsLost went down by
				// itself: no loss, no reset.
				{at(30), 20.0, false, int64(250_000), int64(2000), int64(0), 100_000.0, 100.0, 0.0, 0.03, 25.0, int64(1280), int64(720), int64(500), int64(0), int64(0), 0.0, int64(1), 2.0, 0.02, 0.0, 0.0, 0.05, 0.005},
				// The stream started again: every count is the new value.
				{at(40), 10.0, true, int64(50_000), int64(400), int64(4), 40_000.0, 40.0, 400.0 / 404, 0.04, 30.0, int64(1280), int64(720), int64(250), int64(1), int64(0), 0.0, int64(0), 0.0, 0.02, 0.5, 0.1, 0.0, 0.004},
			},
		},
		{
			name: "inbound audio",
			sql:  "SELECT " + audio + " FROM kohaku_inbound_rtp_rates WHERE connection_id = 'conn-rates' AND stats_id = 'IT-audio' ORDER BY time",
			want: [][]any{
				{at(0), nil, false, nil, nil, nil, 0.005, 0.1, nil, nil},
				{at(10), 10.0, false, 32_000.0, 50.0, 0.0, 0.006, 0.2, 1.0, 0.06},
				{at(30), 20.0, false, 32_000.0, 50.0, 0.0, 0.007, 0.3, 1.0, 0.05},
				{at(40), 10.0, true, 6_400.0, 10.0, 0.0, 0.008, 0.4, 2.0, 0.1},
			},
		},
		{
			name: "outbound",
			sql:  "SELECT " + outbound + " FROM kohaku_outbound_rtp_rates WHERE connection_id = 'conn-rates' ORDER BY time",
			want: [][]any{
				{at(0), nil, false, nil, nil, nil, nil, 30.0, int64(640), int64(360), nil, nil, nil, nil, nil, "none", nil, nil, nil, nil, 1e6},
				{at(10), 10.0, false, int64(125_000), int64(1000), 100_000.0, 100.0, 30.0, int64(640), int64(360), int64(300), 0.005, 1.0, 0.1, 0.0, "cpu", 0.4, 0.0, 0.0, 4_000.0, 1e6},
				// No framesPerSecond: 400 frames encoded in 20 s.
				{at(30), 20.0, false, int64(250_000), int64(2000), 100_000.0, 100.0, 20.0, int64(320), int64(180), int64(400), 0.005, 0.0, 0.0, 0.05, "bandwidth", 0.25, 0.75, 0.0, 0.0, 5e5},
				// Started again: the durations count from zero too.
				{at(40), 10.0, true, int64(25_000), int64(200), 20_000.0, 20.0, 30.0, int64(320), int64(180), int64(100), 0.004, 0.2, 0.0, 0.0, "bandwidth", 0.0, 0.8, 0.0, 0.0, 5e5},
			},
		},
		{
			name: "remote inbound",
			sql:  "SELECT " + remote + " FROM kohaku_remote_inbound_rtp_rates WHERE connection_id = 'conn-rates' ORDER BY time",
			want: [][]any{
				// Nothing to compare with: the round trip time and fractionLost as reported.
				{at(0), nil, false, 0.05, 0.0, nil, nil, 0.0, "fraction_lost", 0.001},
				// (0.45-0.05)/(5-1) measured in the interval; 50 of 1000 sent lost.
				{at(10), 10.0, false, 0.1, 0.05, int64(50), int64(1000), 5.0, "packets", 0.002},
				{at(30), 20.0, false, 0.15, 0.0, int64(0), int64(2000), 0.0, "packets", 0.003},
				// The round trip counters went down: started again, 10 lost of the 200
				// sent since the sender started again too.
				{at(40), 10.0, true, 0.3, 0.1, int64(10), int64(200), 5.0, "packets", 0.004},
				// The sender's report lacks the stream: fractionLost instead.
				{at(50), 10.0, false, 0.2, 0.08, int64(20), nil, 8.0, "fraction_lost", 0.005},
			},
		},
	}
	for _, db := range databases {
		t.Run(db.name, func(t *testing.T) {
			c := freshConn(t, db.url(t))
			mustMigrate(t, c, Options{})
			insertSeries(t, c, rateSeries()...)
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					got := query(t, c, tt.sql)
					if d := diffTables(got, table{cols: got.cols, rows: tt.want}); d != "" {
						t.Errorf("%s:\n%s", tt.sql, d)
					}
				})
			}
		})
	}
}

func TestRateViewsAreTheSameOnTimescaleDBAndPostgreSQL(t *testing.T) {
	pg := freshConn(t, postgresURL(t))
	ts := freshConn(t, timescaleURL(t))
	data := append(append(rateSeries(), handSeries()...), randomSeries(5)...)
	mustMigrate(t, pg, Options{})
	mustMigrate(t, ts, Options{})
	loadFixtures(t, pg)
	loadFixtures(t, ts)
	insertSeries(t, pg, data...)
	insertSeries(t, ts, data...)
	// Compressed chunks are read too.
	compressRTPChunks(t, ts)
	for _, name := range rateViews {
		t.Run(name, func(t *testing.T) {
			sql := "SELECT * FROM " + name + ` ORDER BY connection_id COLLATE "C", stats_id COLLATE "C", time`
			want := query(t, pg, sql)
			if len(want.rows) < 50 {
				t.Fatalf("%s has %d rows on PostgreSQL, want the data to give at least 50", name, len(want.rows))
			}
			if d := diffTables(query(t, ts, sql), want); d != "" {
				t.Errorf("TimescaleDB and PostgreSQL differ in %s:\n%s", name, d)
			}
			if d := diffTables(columnTypes(t, ts, name), columnTypes(t, pg, name)); d != "" {
				t.Errorf("column types of %s differ:\n%s", name, d)
			}
		})
	}
}

func TestRateViewsNeverGiveNegativeOrImpossibleFigures(t *testing.T) {
	c := freshConn(t, postgresURL(t))
	mustMigrate(t, c, Options{})
	insertSeries(t, c, randomSeries(13)...)
	checks := map[string]struct {
		nonNegative []string
		atMost      map[string]float64
	}{
		"kohaku_inbound_rtp_rates": {
			nonNegative: []string{"interval_seconds", "bytes_received", "packets_received", "packets_lost", "bitrate", "packets_per_second", "freeze_count", "freeze_duration"},
			atMost:      map[string]float64{"loss_percent": 100},
		},
		"kohaku_outbound_rtp_rates": {
			nonNegative: []string{"interval_seconds", "bytes_sent", "packets_sent", "bitrate", "packets_per_second"},
		},
		"kohaku_remote_inbound_rtp_rates": {
			nonNegative: []string{"interval_seconds", "packets_lost", "packets_sent", "round_trip_time", "loss_percent"},
			atMost:      map[string]float64{"loss_percent": 100},
		},
	}
	for view, ch := range checks {
		t.Run(view, func(t *testing.T) {
			var conds []string
			for _, col := range ch.nonNegative {
				conds = append(conds, col+" < 0")
			}
			for col, limit := range ch.atMost {
				conds = append(conds, col+" > "+strconv.FormatFloat(limit, 'g', -1, 64))
			}
			bad := query(t, c, "SELECT connection_id, stats_id, time FROM "+view+" WHERE "+strings.Join(conds, " OR "))
			if len(bad.rows) > 0 {
				t.Errorf("%s has negative or impossible figures in %v", view, bad.rows)
			}
			var resets, counted int
			if err := c.QueryRow(context.Background(), "SELECT count(*) FILTER (WHERE counter_reset), count(interval_seconds) FROM "+view).Scan(&resets, &counted); err != nil {
				t.Fatal(err)
			}
			if resets == 0 || counted < 100 {
				t.Errorf("%d reports with counts, %d resets: the data does not test resets", counted, resets)
			}
		})
	}
}

func TestRateViewsDocumentEveryColumn(t *testing.T) {
	c := freshConn(t, postgresURL(t))
	mustMigrate(t, c, Options{})
	for _, name := range rateViews {
		undocumented := query(t, c, `SELECT a.attname::text FROM pg_attribute a
WHERE a.attrelid = $1::regclass AND a.attnum > 0 AND NOT a.attisdropped AND coalesce(col_description(a.attrelid, a.attnum), '') = ''`, name)
		if len(undocumented.rows) > 0 {
			t.Errorf("%s: columns without a comment: %v", name, undocumented.column("attname"))
		}
		var doc string
		if err := c.QueryRow(context.Background(), "SELECT coalesce(obj_description($1::regclass, 'pg_class'), '')", name).Scan(&doc); err != nil {
			t.Fatal(err)
		}
		if !fingerprintMark.MatchString(doc) || len(doc) < 100 {
			t.Errorf("%s: comment %q, want its documentation and the fingerprint of its definition", name, doc)
		}
	}
}
