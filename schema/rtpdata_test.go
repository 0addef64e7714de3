package schema

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"kohaku/pkg/normalize"
	"kohaku/testsupport/fixtures"
)

// Test data for the per-minute RTP views: the browser fixtures, hand-made series whose
// figures are worked out in the tests, and seeded random series with resets and gaps.

// database is a server that the aggregate tests run on.
type database struct {
	name string
	url  func(testing.TB) string
}

// databases are the two kinds of server the views must agree on.
var databases = []database{
	{"postgres", postgresURL},
	{"timescaledb", timescaleURL},
}

// loadFixtures stores every fixture as the writer would: normalized, then by COPY.
func loadFixtures(t testing.TB, c *pgx.Conn) {
	t.Helper()
	all, err := fixtures.All()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range all {
		rows, err := normalize.Message(f.ExporterType, f.Body)
		if err != nil {
			t.Fatalf("normalize fixture %s: %v", f.Name, err)
		}
		for table, rs := range rows.Tables {
			copyRows(t, c, table, normalize.Columns(table), rs)
		}
	}
}

func copyRows(t testing.TB, c *pgx.Conn, table string, cols []string, rows [][]any) {
	t.Helper()
	n, err := c.CopyFrom(context.Background(), pgx.Identifier{table}, cols, pgx.CopyFromRows(rows))
	if err != nil {
		t.Fatalf("copy into %s: %v", table, err)
	}
	if int(n) != len(rows) {
		t.Fatalf("copied %d rows into %s, want %d", n, table, len(rows))
	}
}

// statsKeyColumns are the leading columns that series fills itself.
var statsKeyColumns = []string{"time", "channel_id", "session_id", "connection_id", "stats_id", "stats_timestamp"}

// series is one stats object's samples for a test.
type series struct {
	table, connectionID, statsID string
	cols                         []string // after statsKeyColumns
	samples                      []sample
}

// sample is one row of a series: its time (also its stats timestamp) and the values of
// series.cols.
type sample struct {
	at     time.Time
	values []any
}

func (s series) rows() [][]any {
	var out [][]any
	for _, smp := range s.samples {
		row := []any{smp.at, "ch-" + s.connectionID, "se-" + s.connectionID, s.connectionID, s.statsID, msSinceEpoch(smp.at)}
		out = append(out, append(row, smp.values...))
	}
	return out
}

func msSinceEpoch(t time.Time) float64 { return float64(t.UnixMicro()) / 1000 }

func insertSeries(t testing.TB, c *pgx.Conn, ss ...series) {
	t.Helper()
	for _, s := range ss {
		copyRows(t, c, s.table, append(append([]string{}, statsKeyColumns...), s.cols...), s.rows())
	}
}

// handStart is the start of the hand-made series: a whole minute.
var handStart = time.Date(2026, 1, 5, 10, 0, 0, 0, time.UTC)

func at(seconds int) time.Time { return handStart.Add(time.Duration(seconds) * time.Second) }

// handSeries is a received and a sent stream of one connection whose per-minute figures
// the tests know exactly. The received one has a loss counter that goes down by itself in
// minute 1, a reset (a new stream under the same id) in minute 2 and no sample in minute 3.
func handSeries() []series {
	return []series{
		{
			table: "rtc_inbound_rtp_stats", connectionID: "conn-hand", statsID: "IT-hand",
			cols: []string{"kind", "ssrc", "bytes_received", "packets_received", "packets_lost", "freeze_count", "total_freezes_duration", "jitter", "frames_per_second", "frame_width", "frame_height"},
			samples: []sample{
				{at(0), []any{"video", int64(1111), int64(0), int64(0), int64(0), int64(0), 0.0, 0.010, 30.0, int64(640), int64(480)}},
				{at(20), []any{"video", int64(1111), int64(250_000), int64(190), int64(10), int64(1), 0.5, 0.020, 20.0, int64(1280), int64(720)}},
				{at(80), []any{"video", int64(1111), int64(1_000_000), int64(790), int64(5), int64(1), 0.5, 0.030, 30.0, int64(1280), int64(720)}},
				{at(140), []any{"video", int64(1111), int64(150_000), int64(100), int64(2), int64(0), 0.0, 0.040, 30.0, int64(1280), int64(720)}},
				{at(260), []any{"video", int64(1111), int64(450_000), int64(400), int64(2), int64(0), 0.0, 0.040, 30.0, int64(1280), int64(720)}},
			},
		},
		{
			table: "rtc_remote_outbound_rtp_stats", connectionID: "conn-hand", statsID: "RO-hand",
			cols: []string{"kind", "ssrc", "local_id", "total_round_trip_time", "round_trip_time_measurements", "round_trip_time"},
			samples: []sample{
				{at(10), []any{"video", int64(1111), "IT-hand", 0.1, int64(2), 0.05}},
				{at(30), []any{"video", int64(1111), "IT-hand", 0.3, int64(6), 0.05}},
				{at(90), []any{"video", int64(1111), "IT-hand", 0.9, int64(10), 0.2}},
			},
		},
		{
			table: "rtc_outbound_rtp_stats", connectionID: "conn-hand", statsID: "OT-hand",
			cols: []string{"kind", "ssrc", "rid", "bytes_sent", "packets_sent", "frames_per_second", "frame_width", "frame_height", "target_bitrate", "quality_limitation_reason"},
			samples: []sample{
				{at(0), []any{"video", int64(2222), "r0", int64(0), int64(0), 30.0, int64(640), int64(360), 1e6, "none"}},
				{at(30), []any{"video", int64(2222), "r0", int64(375_000), int64(300), 30.0, int64(640), int64(360), 1e6, "none"}},
				{at(90), []any{"video", int64(2222), "r0", int64(1_125_000), int64(900), 24.0, int64(320), int64(180), 5e5, "bandwidth"}},
			},
		},
		{
			// Minute 1 starts again: roundTripTimeMeasurements went down with the
			// loss counter, so its 3 lost packets count from zero.
			table: "rtc_remote_inbound_rtp_stats", connectionID: "conn-hand", statsID: "RI-hand",
			cols: []string{"kind", "ssrc", "local_id", "packets_lost", "total_round_trip_time", "round_trip_time_measurements", "round_trip_time", "jitter", "fraction_lost"},
			samples: []sample{
				{at(5), []any{"video", int64(2222), "OT-hand", int64(0), 0.02, int64(1), 0.02, 0.001, 0.0}},
				{at(25), []any{"video", int64(2222), "OT-hand", int64(15), 0.08, int64(3), 0.03, 0.003, 0.05}},
				{at(85), []any{"video", int64(2222), "OT-hand", int64(3), 0.05, int64(1), 0.05, 0.002, 0.01}},
			},
		},
	}
}

// randomSeries makes seeded series for several connections: every stream type of the
// views, samples 5 to 25 s apart with gaps of minutes, counters that sometimes start again,
// a loss counter that sometimes goes down by itself, and a few NULLs.
func randomSeries(seed uint64) []series {
	r := rand.New(rand.NewPCG(seed, seed))
	var out []series
	start := time.Date(2026, 2, 1, 12, 0, 0, 0, time.UTC)
	for conn := range 3 {
		connID := fmt.Sprintf("conn-rand-%d", conn)
		for stream := range 2 {
			ssrc := int64(1000*conn + stream)
			kind := []string{"audio", "video"}[stream]
			in := fmt.Sprintf("IT-%d", ssrc)
			out1 := fmt.Sprintf("OT-%d", ssrc)
			out = append(out,
				randomWalk(r, start, "rtc_inbound_rtp_stats", connID, in, []walkColumn{
					{"kind", walkText, kind}, {"ssrc", walkInt, ssrc},
					{"bytes_received", walkCounter, 50_000}, {"packets_received", walkCounter, 60},
					{"packets_lost", walkLoss, 3}, {"freeze_count", walkCounter, 1},
					{"total_freezes_duration", walkFloatCounter, 0.3}, {"jitter", walkGauge, 0.02},
					{"frames_per_second", walkGauge, 30.0}, {"frame_width", walkInt, int64(640)}, {"frame_height", walkInt, int64(480)},
				}),
				randomWalk(r, start, "rtc_remote_outbound_rtp_stats", connID, "RO-"+in, []walkColumn{
					{"kind", walkText, kind}, {"ssrc", walkInt, ssrc}, {"local_id", walkText, in},
					{"total_round_trip_time", walkFloatCounter, 0.1}, {"round_trip_time_measurements", walkCounter, 3},
					{"round_trip_time", walkGauge, 0.05},
				}),
				randomWalk(r, start, "rtc_outbound_rtp_stats", connID, out1, []walkColumn{
					{"kind", walkText, kind}, {"ssrc", walkInt, ssrc + 500}, {"rid", walkText, "r0"},
					{"bytes_sent", walkCounter, 50_000}, {"packets_sent", walkCounter, 60},
					{"frames_per_second", walkGauge, 30.0}, {"frame_width", walkInt, int64(640)}, {"frame_height", walkInt, int64(480)},
					{"target_bitrate", walkGauge, 1e6}, {"quality_limitation_reason", walkText, "none"},
				}),
				randomWalk(r, start, "rtc_remote_inbound_rtp_stats", connID, "RI-"+out1, []walkColumn{
					{"kind", walkText, kind}, {"ssrc", walkInt, ssrc + 500}, {"local_id", walkText, out1},
					{"packets_lost", walkLoss, 3}, {"total_round_trip_time", walkFloatCounter, 0.1},
					{"round_trip_time_measurements", walkCounter, 3}, {"round_trip_time", walkGauge, 0.05},
					{"jitter", walkGauge, 0.02}, {"fraction_lost", walkGauge, 0.05},
				}),
			)
		}
	}
	return out
}

type walkKind int

const (
	walkText         walkKind = iota // the constant value
	walkInt                          // the constant value
	walkCounter                      // int64 growing by up to value a sample, from 0 again on a reset
	walkFloatCounter                 // float64 likewise
	walkLoss                         // like walkCounter, sometimes down by 1
	walkGauge                        // float64 around value
)

type walkColumn struct {
	name  string
	kind  walkKind
	value any
}

func randomWalk(r *rand.Rand, start time.Time, table, connID, statsID string, cols []walkColumn) series {
	s := series{table: table, connectionID: connID, statsID: statsID}
	for _, c := range cols {
		s.cols = append(s.cols, c.name)
	}
	state := make([]float64, len(cols))
	at := start.Add(time.Duration(r.IntN(60_000)) * time.Millisecond)
	end := start.Add(12 * time.Minute)
	for at.Before(end) {
		reset := r.IntN(20) == 0
		values := make([]any, len(cols))
		for i, c := range cols {
			if reset && c.kind != walkText && c.kind != walkInt && c.kind != walkGauge {
				state[i] = 0
			}
			switch c.kind {
			case walkText, walkInt:
				values[i] = c.value
				continue
			case walkCounter:
				state[i] += float64(r.IntN(int(c.value.(int)) + 1))
				values[i] = int64(state[i])
			case walkLoss:
				if r.IntN(8) == 0 && state[i] > 0 {
					state[i]--
				} else {
					state[i] += float64(r.IntN(int(c.value.(int)) + 1))
				}
				values[i] = int64(state[i])
			case walkFloatCounter:
				state[i] += r.Float64() * c.value.(float64)
				values[i] = state[i]
			case walkGauge:
				values[i] = c.value.(float64) * (0.5 + r.Float64())
			}
			if r.IntN(40) == 0 {
				values[i] = nil
			}
		}
		s.samples = append(s.samples, sample{at, values})
		step := time.Duration(5000+r.IntN(20_000)) * time.Millisecond
		if r.IntN(15) == 0 {
			step += time.Duration(1+r.IntN(3)) * time.Minute
		}
		at = at.Add(step)
	}
	return s
}

// table is the result of a query: column names and rows of values.
type table struct {
	cols []string
	rows [][]any
}

func query(t testing.TB, c *pgx.Conn, sql string, args ...any) table {
	t.Helper()
	rows, err := c.Query(context.Background(), sql, args...)
	if err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	defer rows.Close()
	var out table
	for _, f := range rows.FieldDescriptions() {
		out.cols = append(out.cols, f.Name)
	}
	for rows.Next() {
		v, err := rows.Values()
		if err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
		out.rows = append(out.rows, v)
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return out
}

// column returns the values of one column.
func (tb table) column(name string) []any {
	k := -1
	for i, c := range tb.cols {
		if c == name {
			k = i
		}
	}
	if k < 0 {
		panic("no column " + name)
	}
	var out []any
	for _, r := range tb.rows {
		out = append(out, r[k])
	}
	return out
}

// diffTables describes how got differs from want, "" when they agree: the same columns,
// the same rows in the same order, floats equal to a relative 1e-9.
func diffTables(got, want table) string {
	if !reflect.DeepEqual(got.cols, want.cols) {
		return fmt.Sprintf("columns %v, want %v", got.cols, want.cols)
	}
	var b strings.Builder
	if len(got.rows) != len(want.rows) {
		fmt.Fprintf(&b, "%d rows, want %d\n", len(got.rows), len(want.rows))
	}
	for i := range min(len(got.rows), len(want.rows)) {
		for k, col := range got.cols {
			if !sameValue(got.rows[i][k], want.rows[i][k]) {
				fmt.Fprintf(&b, "row %d %s: %v, want %v\n", i, col, got.rows[i][k], want.rows[i][k])
			}
		}
		if b.Len() > 2000 {
			break
		}
	}
	return b.String()
}

func sameValue(a, b any) bool {
	switch x := a.(type) {
	case float64:
		y, ok := b.(float64)
		return ok && closeTo(x, y)
	case time.Time:
		y, ok := b.(time.Time)
		return ok && x.Equal(y)
	}
	return reflect.DeepEqual(a, b)
}

func closeTo(x, y float64) bool {
	return x == y || math.Abs(x-y) <= 1e-9*math.Max(math.Abs(x), math.Abs(y))
}
