package schema

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// scoreSeries is one connection whose per-minute scores are computed by hand in
// analysis/SCORES.md ("The analysis test"). Reports come every 10 s from 10 s before
// minute 0 to the end of minute 1: minute 0 is clean on the receiving side, in minute 1 the
// round trip triples, 5 % of the received audio is lost (3 % concealed), and the received
// video drops to half its size and frame rate with one 2 s freeze. The sent audio loses
// 2 % all along, the sent video goes at half the size of its camera, limited by bandwidth.
func scoreSeries() []series {
	const reports = 13 // at -10 s, 0 s, ..., 110 s
	var ia, iv, oa, ov, ms, ri, cp []sample
	var (
		iaRecv, iaLost, iaConcealed, iaSamples int64
		iaDelay                                float64
		ivFreezes                              int64
		ivFrozen                               float64
		oaSent, ovSent, riLost, riMeasured     int64
		riTotalRTT, ovBandwidth                float64
	)
	for k := range reports {
		t := at(10*k - 10)
		second := 10*k - 10
		if k > 0 { // the counters grow between reports
			if second < 60 {
				iaRecv += 500
			} else {
				iaRecv += 475
				iaLost += 25
				iaConcealed += 14_400
			}
			iaSamples += 480_000
			iaDelay += 480_000 * 0.05
			oaSent += 500
			ovSent += 900
			riLost += 10
			riMeasured++
			riTotalRTT += 0.2
			ovBandwidth += 10
			if second == 90 {
				ivFreezes++
				ivFrozen += 2
			}
		}
		rtt, fps, w, h := 0.1, 30.0, int64(1280), int64(720)
		if second >= 60 {
			rtt, fps, w, h = 0.3, 15.0, 640, 360
		}
		ia = append(ia, sample{t, []any{"audio", int64(1), iaRecv, iaRecv * 100, iaLost, iaConcealed, iaSamples, iaDelay, iaSamples}})
		iv = append(iv, sample{t, []any{"video", int64(2), int64(k * 3000), int64(k * 100_000), int64(0), fps, w, h, ivFreezes, ivFrozen}})
		oa = append(oa, sample{t, []any{"audio", int64(3), oaSent, oaSent * 100}})
		ov = append(ov, sample{t, []any{"video", int64(4), ovSent, ovSent * 1000, 30.0, int64(640), int64(360), "SV",
			"bandwidth", map[string]any{"none": 0.0, "cpu": 0.0, "bandwidth": ovBandwidth, "other": 0.0}}})
		ms = append(ms, sample{t, []any{"video", int64(1280), int64(720), 30.0}})
		ri = append(ri, sample{t, []any{"audio", int64(3), "OA", riLost, riTotalRTT, riMeasured, 0.2}})
		cp = append(cp, sample{t, []any{"succeeded", true, rtt}})
	}
	return []series{
		{table: "rtc_inbound_rtp_stats", connectionID: "conn-score", statsID: "IA", samples: ia,
			cols: []string{"kind", "ssrc", "packets_received", "bytes_received", "packets_lost", "concealed_samples",
				"total_samples_received", "jitter_buffer_delay", "jitter_buffer_emitted_count"}},
		{table: "rtc_inbound_rtp_stats", connectionID: "conn-score", statsID: "IV", samples: iv,
			cols: []string{"kind", "ssrc", "packets_received", "bytes_received", "packets_lost", "frames_per_second",
				"frame_width", "frame_height", "freeze_count", "total_freezes_duration"}},
		{table: "rtc_outbound_rtp_stats", connectionID: "conn-score", statsID: "OA", samples: oa,
			cols: []string{"kind", "ssrc", "packets_sent", "bytes_sent"}},
		{table: "rtc_outbound_rtp_stats", connectionID: "conn-score", statsID: "OV", samples: ov,
			cols: []string{"kind", "ssrc", "packets_sent", "bytes_sent", "frames_per_second", "frame_width", "frame_height",
				"media_source_id", "quality_limitation_reason", "quality_limitation_durations"}},
		{table: "rtc_media_source_stats", connectionID: "conn-score", statsID: "SV", samples: ms,
			cols: []string{"kind", "width", "height", "frames_per_second"}},
		{table: "rtc_remote_inbound_rtp_stats", connectionID: "conn-score", statsID: "RA", samples: ri,
			cols: []string{"kind", "ssrc", "local_id", "packets_lost", "total_round_trip_time", "round_trip_time_measurements", "round_trip_time"}},
		{table: "rtc_candidate_pair_stats", connectionID: "conn-score", statsID: "CP", samples: cp,
			cols: []string{"state", "nominated", "current_round_trip_time"}},
	}
}

// runScores runs analysis/20_scores.sql alone over [since, until) in one transaction, as
// Analyze runs it (the embedded file, cut into statements by the same code, each with
// $1 = since, $2 = until and $3 NULL), so that its tests do not depend on the other files.
func runScores(t testing.TB, c *pgx.Conn, since, until time.Time) {
	t.Helper()
	scripts, err := analysisScripts()
	if err != nil {
		t.Fatal(err)
	}
	k := slices.IndexFunc(scripts, func(s script) bool { return s.name == "20_scores.sql" })
	if k < 0 {
		t.Fatal("no embedded analysis/20_scores.sql")
	}
	ctx := context.Background()
	err = pgx.BeginFunc(ctx, c, func(tx pgx.Tx) error {
		_, err := runScript(ctx, tx, scripts[k], since, until, nil)
		return err
	})
	if err != nil {
		t.Fatalf("20_scores.sql over [%v, %v): %v", since, until, err)
	}
}

// streamScore is a row of kohaku_stream_score as the tests compare it.
type streamScore struct {
	bucket          time.Time
	statsID         string
	kind, direction string
	score           float64
	mos, r          *float64
	reasons         []scoreReason
	inputs          map[string]any
	scoreVersion    int
}

func readStreamScores(t testing.TB, c *pgx.Conn, connectionID string) []streamScore {
	t.Helper()
	rows, err := c.Query(context.Background(), `SELECT bucket, stats_id, kind, direction, score, mos, r_factor, reasons, inputs, score_version
FROM kohaku_stream_score WHERE connection_id = $1 ORDER BY bucket, stats_id`, connectionID)
	if err != nil {
		t.Fatal(err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (streamScore, error) {
		var s streamScore
		err := r.Scan(&s.bucket, &s.statsID, &s.kind, &s.direction, &s.score, &s.mos, &s.r, &s.reasons, &s.inputs, &s.scoreVersion)
		return s, err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestScoresAnalysisComputesTheHandMadeConnection(t *testing.T) {
	type want struct {
		minute    int
		statsID   string
		kind, dir string
		score     float64
		r         float64 // audio only
		reasons   []scoreReason
	}
	wants := []want{
		// Minute 0: 100 ms round trip + 50 ms jitter buffer is 100 ms one way: no impairment.
		{0, "IA", "audio", "inbound", 4.4093, 93.2, nil},
		{0, "IV", "video", "inbound", 5, 0, nil},
		// 2 % loss reported by the receiving end, 200 ms round trip.
		{0, "OA", "audio", "outbound", 4.2348, 86.1889, []scoreReason{{"packet-loss", 0.174}}},
		// Half the camera's width and height, limited by bandwidth the whole minute.
		{0, "OV", "video", "outbound", 3.75, 0, []scoreReason{{"low-resolution", 0.75}, {"quality-limited-bandwidth", 0.5}}},
		// Minute 1: 150 + 50 ms one way, 5 % loss (the 3 % concealment adds nothing).
		{1, "IA", "audio", "inbound", 3.7949, 74.3749, []scoreReason{{"packet-loss", 0.515}, {"delay", 0.099}}},
		// 15 fps and 640x360 against the 30 fps and 1280x720 of the minute before, a 2 s freeze.
		{1, "IV", "video", "inbound", 2.9842, 0, []scoreReason{{"low-frame-rate", 0.799}, {"low-resolution", 0.75}, {"freeze", 0.467}}},
		{1, "OA", "audio", "outbound", 4.2348, 86.1889, []scoreReason{{"packet-loss", 0.174}}},
		{1, "OV", "video", "outbound", 3.75, 0, []scoreReason{{"low-resolution", 0.75}, {"quality-limited-bandwidth", 0.5}}},
	}
	for _, db := range databases {
		t.Run(db.name, func(t *testing.T) {
			c := freshConn(t, db.url(t))
			mustMigrate(t, c, Options{})
			insertSeries(t, c, scoreSeries()...)
			runScores(t, c, minute(0), minute(2))

			got := readStreamScores(t, c, "conn-score")
			if len(got) != len(wants) {
				t.Fatalf("%d stream scores, want %d: %+v", len(got), len(wants), got)
			}
			for i, w := range wants {
				g := got[i]
				if !g.bucket.Equal(minute(w.minute)) || g.statsID != w.statsID || g.kind != w.kind || g.direction != w.dir {
					t.Errorf("row %d: %v %s %s %s, want minute %d %s %s %s", i, g.bucket, g.statsID, g.kind, g.direction, w.minute, w.statsID, w.kind, w.dir)
					continue
				}
				if !near(g.score, w.score) {
					t.Errorf("%s minute %d: score %.4f, want %.4f (inputs %v)", w.statsID, w.minute, g.score, w.score, g.inputs)
				}
				if w.kind == "audio" && (g.r == nil || !near(*g.r, w.r) || g.mos == nil || *g.mos != g.score) {
					t.Errorf("%s minute %d: R %v and MOS %v, want R %.4f and MOS = score", w.statsID, w.minute, g.r, g.mos, w.r)
				}
				if w.kind == "video" && (g.r != nil || g.mos != nil) {
					t.Errorf("%s minute %d: video has R %v, MOS %v", w.statsID, w.minute, g.r, g.mos)
				}
				if g.scoreVersion != 1 {
					t.Errorf("%s minute %d: score_version %d, want 1", w.statsID, w.minute, g.scoreVersion)
				}
				best := 5.0
				if w.kind == "audio" {
					best = 4.4093
				}
				checkReasons(t, g.reasons, w.reasons, best-g.score)
			}

			// The connection: the mean of its 4 audio and of its 4 video stream-minutes.
			var (
				audio, video, score float64
				minutes, version    int
				started, ended      time.Time
				reasons             []map[string]any
			)
			err := c.QueryRow(context.Background(), `SELECT audio_score, video_score, score, minutes, started_at, ended_at, reasons, score_version
FROM kohaku_connection_score WHERE connection_id = 'conn-score'`).Scan(&audio, &video, &score, &minutes, &started, &ended, &reasons, &version)
			if err != nil {
				t.Fatal(err)
			}
			if !near(audio, 4.1685) || !near(video, 3.8711) || !near(score, 3.8711) {
				t.Errorf("connection audio %.4f, video %.4f, score %.4f; want 4.1685, 3.8711, 3.8711", audio, video, score)
			}
			if minutes != 2 || !started.Equal(minute(0)) || !ended.Equal(minute(2)) || version != 1 {
				t.Errorf("connection minutes %d from %v to %v, version %d; want 2 from %v to %v, 1", minutes, started, ended, version, minute(0), minute(2))
			}
			wantReasons := []struct {
				kind, reason string
				impact       float64
				minutes      float64
			}{
				{"video", "low-resolution", 0.5625, 3},
				{"video", "quality-limited-bandwidth", 0.25, 2},
				{"audio", "packet-loss", 0.2158, 3},
				{"video", "low-frame-rate", 0.1998, 1},
				{"video", "freeze", 0.1167, 1},
				{"audio", "delay", 0.0248, 1},
			}
			if len(reasons) != len(wantReasons) {
				t.Fatalf("connection reasons %v, want %v", reasons, wantReasons)
			}
			for i, w := range wantReasons {
				g := reasons[i]
				if g["kind"] != w.kind || g["reason"] != w.reason || !near(g["impact"].(float64), w.impact) || g["minutes"] != w.minutes {
					t.Errorf("connection reason %d = %v, want %+v", i, g, w)
				}
			}
		})
	}
}

// Running the analysis again, over the whole period or a part of it, gives the same rows:
// every run replaces what the one before wrote.
func TestScoresAnalysisRunTwiceOrOverAPartGivesTheSameScores(t *testing.T) {
	c := freshConn(t, postgresURL(t))
	mustMigrate(t, c, Options{})
	insertSeries(t, c, scoreSeries()...)
	runScores(t, c, minute(0), minute(2))
	first := snapshotScores(t, c)
	runScores(t, c, minute(0), minute(2))
	runScores(t, c, minute(1).Add(30*time.Second), minute(2))
	if again := snapshotScores(t, c); again != first {
		t.Errorf("after running again:\n%s\nwant\n%s", again, first)
	}
	// A period without reports removes nothing else.
	runScores(t, c, minute(5), minute(6))
	if again := snapshotScores(t, c); again != first {
		t.Errorf("after an empty period:\n%s\nwant\n%s", again, first)
	}
}

// A minute whose reports are gone (deleted by hand, or by retention) loses its score at the
// next run over it, and a connection with no scored minute left loses its score.
func TestScoresAnalysisForgetsMinutesWithoutReports(t *testing.T) {
	c := freshConn(t, postgresURL(t))
	mustMigrate(t, c, Options{})
	insertSeries(t, c, scoreSeries()...)
	runScores(t, c, minute(0), minute(2))
	for _, table := range []string{"rtc_inbound_rtp_stats", "rtc_outbound_rtp_stats"} {
		mustExec(t, c, "DELETE FROM "+table+" WHERE time >= $1", minute(1))
	}
	runScores(t, c, minute(1), minute(2))
	var n, minutes int
	if err := c.QueryRow(context.Background(), "SELECT count(*) FROM kohaku_stream_score WHERE bucket >= $1", minute(1)).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if err := c.QueryRow(context.Background(), "SELECT minutes FROM kohaku_connection_score WHERE connection_id = 'conn-score'").Scan(&minutes); err != nil {
		t.Fatal(err)
	}
	if n != 0 || minutes != 1 {
		t.Errorf("%d stream scores left in minute 1 and %d connection minutes, want 0 and 1", n, minutes)
	}
	for _, table := range []string{"rtc_inbound_rtp_stats", "rtc_outbound_rtp_stats"} {
		mustExec(t, c, "DELETE FROM "+table)
	}
	runScores(t, c, minute(0), minute(2))
	if err := c.QueryRow(context.Background(), "SELECT count(*) FROM kohaku_connection_score").Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Errorf("%d connection scores left without any scored minute, want 0", n)
	}
}

// snapshotScores returns every score row, without analyzed_at, as text.
func snapshotScores(t testing.TB, c *pgx.Conn) string {
	t.Helper()
	var s1, s2 []byte
	err := c.QueryRow(context.Background(), `SELECT
    (SELECT jsonb_agg(to_jsonb(s) - 'analyzed_at' ORDER BY connection_id, stats_id, bucket) FROM kohaku_stream_score s),
    (SELECT jsonb_agg(to_jsonb(s) - 'analyzed_at' ORDER BY connection_id) FROM kohaku_connection_score s)`).Scan(&s1, &s2)
	if err != nil {
		t.Fatal(err)
	}
	return string(s1) + "\n" + string(s2)
}

// Analyze, which runs every analysis file in one transaction, writes the same scores as
// 20_scores.sql alone.
func TestAnalyzeWritesTheScores(t *testing.T) {
	c := freshConn(t, postgresURL(t))
	mustMigrate(t, c, Options{})
	insertSeries(t, c, scoreSeries()...)
	runScores(t, c, minute(0), minute(2))
	want := snapshotScores(t, c)
	mustExec(t, c, "DELETE FROM kohaku_stream_score")
	mustExec(t, c, "DELETE FROM kohaku_connection_score")
	if _, err := Analyze(context.Background(), c, minute(0), minute(2)); err != nil {
		t.Fatal(err)
	}
	if got := snapshotScores(t, c); got != want {
		t.Errorf("after Analyze:\n%s\nwant\n%s", got, want)
	}
}

// longSeries is a received audio stream whose report before minute 0 is two hours older,
// and a stats id that its connection also used in another channel and session (in no
// other way the lag() partitions of the rate views and the natural key differ): the
// reports that 20_scores.sql finds before its period by the natural key.
func longSeries(t testing.TB, c *pgx.Conn) {
	t.Helper()
	var s []sample
	for k, second := range []int{-7200, 50, 60, 70, 80, 90, 100, 110} {
		n := int64(k * 500)
		s = append(s, sample{at(second), []any{"audio", int64(7), n, n * 100, int64(k), int64(k * 300), int64(k * 48_000), float64(k) * 2_400, int64(k * 48_000)}})
	}
	insertSeries(t, c, series{table: "rtc_inbound_rtp_stats", connectionID: "conn-long", statsID: "IL", samples: s,
		cols: []string{"kind", "ssrc", "packets_received", "bytes_received", "packets_lost", "concealed_samples",
			"total_samples_received", "jitter_buffer_delay", "jitter_buffer_emitted_count"}})
	// IA and OA of conn-score again, in another channel and session: an early report and
	// one in minute 0, between conn-score's own reports.
	for _, q := range []string{
		`INSERT INTO rtc_inbound_rtp_stats (time, channel_id, session_id, connection_id, stats_id, stats_timestamp, kind, packets_received, bytes_received, packets_lost)
VALUES ($1, 'ch-other', 'se-other', 'conn-score', 'IA', $3, 'audio', 100, 10000, 1), ($2, 'ch-other', 'se-other', 'conn-score', 'IA', $4, 'audio', 900, 90000, 5)`,
		`INSERT INTO rtc_outbound_rtp_stats (time, channel_id, session_id, connection_id, stats_id, stats_timestamp, kind, packets_sent, bytes_sent)
VALUES ($1, 'ch-other', 'se-other', 'conn-score', 'OA', $3, 'audio', 100, 10000), ($2, 'ch-other', 'se-other', 'conn-score', 'OA', $4, 'audio', 900, 90000)`,
		`INSERT INTO rtc_remote_inbound_rtp_stats (time, channel_id, session_id, connection_id, stats_id, stats_timestamp, kind, local_id, packets_lost, total_round_trip_time, round_trip_time_measurements)
VALUES ($1, 'ch-other', 'se-other', 'conn-score', 'RA', $3, 'audio', 'OA', 1, 0.1, 1), ($2, 'ch-other', 'se-other', 'conn-score', 'RA', $4, 'audio', 'OA', 4, 0.5, 3)`,
	} {
		mustExec(t, c, q, at(-3600), at(45), msSinceEpoch(at(-3600)), msSinceEpoch(at(45)))
	}
}

// 20_scores.sql computes the per-report counts and rates itself, from the reports of its
// period and the one report before it of each stats object, instead of reading the rate
// views (whose lag() reads every earlier report). Every column of its per-report tables
// must equal the view's over the same reports: counter resets, counters going down by
// themselves, missing reports, a remote report without its outbound-rtp, a two-hour gap and
// a stats id used in two sessions included, for periods that start before, at and after
// the streams' first reports.
func TestScoresAnalysisComputesTheRateViewsFigures(t *testing.T) {
	tables := map[string]string{
		"kohaku_score_inbound_rates":        "kohaku_inbound_rtp_rates",
		"kohaku_score_outbound_rates":       "kohaku_outbound_rtp_rates",
		"kohaku_score_remote_inbound_rates": "kohaku_remote_inbound_rtp_rates",
	}
	periods := [][2]time.Time{
		{minute(-1), minute(3)},
		{minute(0), minute(1)},
		{at(35), minute(1)}, // cut to the minute: from minute(0)
		{minute(1), minute(2)},
		{minute(1), at(95)},
	}
	for _, db := range databases {
		t.Run(db.name, func(t *testing.T) {
			c := freshConn(t, db.url(t))
			mustMigrate(t, c, Options{})
			insertSeries(t, c, rateSeries()...)
			insertSeries(t, c, scoreSeries()...)
			longSeries(t, c)
			ctx := context.Background()
			scripts, err := analysisScripts()
			if err != nil {
				t.Fatal(err)
			}
			k := slices.IndexFunc(scripts, func(s script) bool { return s.name == "20_scores.sql" })
			for _, p := range periods {
				err := pgx.BeginFunc(ctx, c, func(tx pgx.Tx) error {
					if _, err := runScript(ctx, tx, scripts[k], p[0], p[1], nil); err != nil {
						return err
					}
					for tmp, view := range tables {
						var cols string
						err := tx.QueryRow(ctx, `SELECT string_agg(quote_ident(attname), ', ' ORDER BY attnum)
FROM pg_attribute WHERE attrelid = to_regclass('pg_temp.'||$1) AND attnum > 0 AND NOT attisdropped`, tmp).Scan(&cols)
						if err != nil {
							return err
						}
						var rows, missing, extra int
						err = tx.QueryRow(ctx, `WITH v AS (
    SELECT `+cols+` FROM `+view+` WHERE time >= date_trunc('minute', $1::timestamptz) AND time < $2::timestamptz
)
SELECT (SELECT count(*) FROM v),
    (SELECT count(*) FROM (SELECT * FROM v EXCEPT ALL SELECT `+cols+` FROM `+tmp+`) d),
    (SELECT count(*) FROM (SELECT `+cols+` FROM `+tmp+` EXCEPT ALL SELECT * FROM v) d)`, p[0], p[1]).Scan(&rows, &missing, &extra)
						if err != nil {
							return err
						}
						if rows == 0 || missing != 0 || extra != 0 {
							t.Errorf("[%v, %v) %s: the view has %d reports, %d of them not in %s, which has %d other rows (columns %s)",
								p[0], p[1], view, rows, missing, tmp, extra, cols)
						}
					}
					return nil
				})
				if err != nil {
					t.Fatal(err)
				}
			}
		})
	}
}

// The live analysis scores the last two minutes every 30 s. Its overlapping runs, each of
// which reads only its period and the report before it, leave the rows of one run over
// the whole time.
func TestScoresAnalysisOfSlidingPeriodsGivesTheRowsOfOneRun(t *testing.T) {
	c := freshConn(t, postgresURL(t))
	mustMigrate(t, c, Options{})
	insertSeries(t, c, rateSeries()...)
	insertSeries(t, c, scoreSeries()...)
	longSeries(t, c)
	runScores(t, c, minute(-1), minute(3))
	want := snapshotScores(t, c)
	mustExec(t, c, "DELETE FROM kohaku_stream_score")
	mustExec(t, c, "DELETE FROM kohaku_connection_score")
	for end := minute(-1); !end.After(minute(3)); end = end.Add(30 * time.Second) {
		runScores(t, c, end.Add(-2*time.Minute), end)
	}
	if got := snapshotScores(t, c); got != want {
		t.Errorf("after sliding periods:\n%s\nwant\n%s", got, want)
	}
}
