package schema

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
	"time"
)

// The per-minute RTP figures for the dashboards come in two layers, because a TimescaleDB
// continuous aggregate cannot hold window functions, and rates from cumulative counters need
// the previous minute:
//
//  1. The minute layer, kohaku_<type>_1m_agg for the inbound-rtp, outbound-rtp,
//     remote-inbound-rtp and remote-outbound-rtp tables: one row per stats object
//     (connection_id, stats_id) and minute, with the first and last value of each
//     cumulative counter and the stats_timestamp of those samples, and averages or last
//     values of the gauges. With TimescaleDB each is a continuous aggregate refreshed by a
//     policy, with real-time aggregation on, so the newest minutes are read from the raw
//     rows until the policy materializes them; without it each is a plain view of the same
//     name, columns and types, computed from the raw rows on every query. Both bucket with
//     the same origin (time_bucket's default, 2000-01-03 UTC), so they agree row by row.
//     This layer is generated here from minuteAggregates, so both forms have the same
//     columns by construction.
//  2. The public views kohaku_inbound_rtp_1m and kohaku_outbound_rtp_1m (views/*.sql),
//     the same SQL on both databases, which turn counters into per-minute deltas and rates
//     with lag() over each stats object's minutes. Their columns are documented in the
//     database itself (COMMENT ON COLUMN) and in the SQL files.
//
// Neither layer is a numbered migration: whether the minute layer is a continuous aggregate
// depends on the server, not on the file, and replacing it (a changed definition, or a
// database that gained TimescaleDB) drops the public views that depend on it. So [Migrate]
// manages both after the numbered migrations and the hypertables, from a definition kept in
// this binary: each object carries a fingerprint of its definition in its comment, an object
// that is missing, of the wrong kind or with another fingerprint is dropped and created
// again, and everything else is left alone. Every run converges on the same state, whatever
// step a previous run stopped at.

// Settings of the refresh policy of the continuous aggregates.
const (
	// aggregateRefreshStart is how far back the policy refreshes. TimescaleDB refreshes
	// only minutes whose rows changed, so a long window costs little and covers rows that
	// arrive late because the writer was down for hours; older rows written again by a
	// replay are refreshed by the writer itself with RefreshAggregates.
	aggregateRefreshStart = 24 * time.Hour
	// aggregateRefreshEnd keeps the current minute out of the materialization: real-time
	// aggregation reads it from the raw rows while it fills.
	aggregateRefreshEnd = time.Minute
	// aggregateRefreshEvery is how often the policy runs.
	aggregateRefreshEvery = time.Minute
	// bucketWidth is the width of a minute bucket, as a PostgreSQL interval.
	bucketWidth = "1 minute"
)

// aggFunc is how the minute layer sums up a column over the samples of one minute.
type aggFunc int

const (
	aggLast  aggFunc = iota // value of the minute's last sample (by time)
	aggFirst                // value of the minute's first sample (by time)
	aggAvg                  // mean of the non-null values
	aggCount                // number of samples; of is unused
)

// aggColumn is one column of a minute aggregate.
type aggColumn struct {
	name string
	fn   aggFunc
	of   string // the column of the stats table
	doc  string // COMMENT ON COLUMN
}

// minuteAggregate is one object of the minute layer.
type minuteAggregate struct {
	name    string // kohaku_<type>_1m_agg
	table   string // the stats table it reads
	doc     string // COMMENT ON VIEW, without the fingerprint
	columns []aggColumn
}

// groupColumns identify a stats object; the minute layer groups by them and the bucket.
// channel_id and session_id follow from connection_id, but grouping by them too lets the
// public views partition by them, so that a dashboard's filter on the channel reaches the
// stats tables instead of being applied after every lag() was computed.
var groupColumns = []string{"channel_id", "session_id", "connection_id", "stats_id"}

// counterOf is the pair of columns first_<name> and <name> for a cumulative counter.
func counterOf(name, doc string) []aggColumn {
	return []aggColumn{
		{"first_" + name, aggFirst, name, doc + " at the first sample of the minute"},
		{name, aggLast, name, doc + " at the last sample of the minute"},
	}
}

func lastOf(name, doc string) aggColumn { return aggColumn{name, aggLast, name, doc} }
func meanOf(name, doc string) aggColumn { return aggColumn{name, aggAvg, name, doc} }

func joinColumns(parts ...[]aggColumn) []aggColumn {
	var out []aggColumn
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

// samplesColumn is the sample count column every minute aggregate starts with.
var samplesColumn = aggColumn{"samples", aggCount, "", "number of samples in the minute"}

// minuteAggregates is the minute layer, in creation order.
var minuteAggregates = []minuteAggregate{
	{
		name:  "kohaku_inbound_rtp_1m_agg",
		table: "rtc_inbound_rtp_stats",
		doc:   "Minute layer of kohaku_inbound_rtp_1m: per inbound-rtp stats object and minute, first and last values of the counters and means of the gauges. Dashboards read kohaku_inbound_rtp_1m.",
		columns: joinColumns(
			[]aggColumn{samplesColumn, lastOf("kind", "kind at the last sample"), lastOf("ssrc", "ssrc at the last sample")},
			counterOf("stats_timestamp", "stats timestamp (ms since the epoch)"),
			counterOf("bytes_received", "bytesReceived"),
			counterOf("packets_received", "packetsReceived"),
			counterOf("packets_lost", "packetsLost"),
			counterOf("freeze_count", "freezeCount"),
			counterOf("total_freezes_duration", "totalFreezesDuration (s)"),
			[]aggColumn{
				meanOf("jitter", "mean jitter (s)"),
				meanOf("frames_per_second", "mean framesPerSecond"),
				lastOf("frame_width", "frameWidth at the last sample"),
				lastOf("frame_height", "frameHeight at the last sample"),
			},
		),
	},
	{
		name:  "kohaku_outbound_rtp_1m_agg",
		table: "rtc_outbound_rtp_stats",
		doc:   "Minute layer of kohaku_outbound_rtp_1m: per outbound-rtp stats object and minute, first and last values of the counters and means of the gauges. Dashboards read kohaku_outbound_rtp_1m.",
		columns: joinColumns(
			[]aggColumn{samplesColumn, lastOf("kind", "kind at the last sample"), lastOf("ssrc", "ssrc at the last sample"), lastOf("rid", "rid at the last sample")},
			counterOf("stats_timestamp", "stats timestamp (ms since the epoch)"),
			counterOf("bytes_sent", "bytesSent"),
			counterOf("packets_sent", "packetsSent"),
			[]aggColumn{
				meanOf("frames_per_second", "mean framesPerSecond"),
				lastOf("frame_width", "frameWidth at the last sample"),
				lastOf("frame_height", "frameHeight at the last sample"),
				meanOf("target_bitrate", "mean targetBitrate (bits/s)"),
				lastOf("quality_limitation_reason", "qualityLimitationReason at the last sample"),
			},
		),
	},
	{
		name:  "kohaku_remote_inbound_rtp_1m_agg",
		table: "rtc_remote_inbound_rtp_stats",
		doc:   "Minute layer of kohaku_outbound_rtp_1m: per remote-inbound-rtp stats object (what the remote end reports about a stream we send) and minute.",
		columns: joinColumns(
			[]aggColumn{samplesColumn, lastOf("kind", "kind at the last sample"), lastOf("ssrc", "ssrc at the last sample"), lastOf("local_id", "localId (the outbound-rtp stats id) at the last sample")},
			counterOf("packets_lost", "packetsLost"),
			counterOf("total_round_trip_time", "totalRoundTripTime (s)"),
			counterOf("round_trip_time_measurements", "roundTripTimeMeasurements"),
			[]aggColumn{
				meanOf("round_trip_time", "mean roundTripTime (s)"),
				meanOf("jitter", "mean jitter (s)"),
				meanOf("fraction_lost", "mean fractionLost"),
			},
		),
	},
	{
		name:  "kohaku_remote_outbound_rtp_1m_agg",
		table: "rtc_remote_outbound_rtp_stats",
		doc:   "Minute layer of kohaku_inbound_rtp_1m: per remote-outbound-rtp stats object (what the remote end reports about a stream we receive) and minute.",
		columns: joinColumns(
			[]aggColumn{samplesColumn, lastOf("kind", "kind at the last sample"), lastOf("ssrc", "ssrc at the last sample"), lastOf("local_id", "localId (the inbound-rtp stats id) at the last sample")},
			counterOf("total_round_trip_time", "totalRoundTripTime (s)"),
			counterOf("round_trip_time_measurements", "roundTripTimeMeasurements"),
			[]aggColumn{meanOf("round_trip_time", "mean roundTripTime (s)")},
		),
	},
}

// aggregateNames returns the names of the minute layer, in creation order.
func aggregateNames() []string {
	out := make([]string, len(minuteAggregates))
	for i, a := range minuteAggregates {
		out[i] = a.name
	}
	return out
}

// createSQL returns the statement that creates a as a continuous aggregate when ext (the
// schema of the timescaledb functions, quoted) is set, else as a plain view. The two differ
// only where they must: time_bucket and first/last on TimescaleDB; date_bin with
// time_bucket's origin and array_agg in time order on plain PostgreSQL, which give the same
// values (NULL included: the last sample's NULL is the last value on both). The natural key
// (connection_id, stats_id, time) makes "first" and "last" unambiguous.
func (a minuteAggregate) createSQL(ext string) string {
	var b strings.Builder
	if ext != "" {
		// materialized_only = false: real-time aggregation, so minutes not yet
		// materialized are read from the raw rows and the dashboards are never behind.
		fmt.Fprintf(&b, "CREATE MATERIALIZED VIEW %s WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS\n", a.name)
		fmt.Fprintf(&b, "SELECT %s.time_bucket(INTERVAL '%s', time) AS bucket", ext, bucketWidth)
	} else {
		fmt.Fprintf(&b, "CREATE VIEW %s AS\n", a.name)
		// The origin is time_bucket's default origin, written in UTC so that the session
		// time zone cannot move it.
		fmt.Fprintf(&b, "SELECT date_bin(INTERVAL '%s', time, TIMESTAMPTZ '2000-01-03 00:00:00+00') AS bucket", bucketWidth)
	}
	for _, g := range groupColumns {
		fmt.Fprintf(&b, ",\n    %s", g)
	}
	for _, c := range a.columns {
		var expr string
		switch {
		case c.fn == aggCount:
			expr = "count(*)"
		case c.fn == aggAvg:
			expr = "avg(" + c.of + ")"
		case c.fn == aggFirst && ext != "":
			expr = ext + ".first(" + c.of + ", time)"
		case c.fn == aggLast && ext != "":
			expr = ext + ".last(" + c.of + ", time)"
		case c.fn == aggFirst:
			expr = "(array_agg(" + c.of + " ORDER BY time))[1]"
		case c.fn == aggLast:
			expr = "(array_agg(" + c.of + " ORDER BY time DESC))[1]"
		}
		fmt.Fprintf(&b, ",\n    %s AS %s", expr, c.name)
	}
	fmt.Fprintf(&b, "\nFROM %s\nGROUP BY 1, %s", a.table, strings.Join(groupColumns, ", "))
	if ext != "" {
		// WITH NO DATA: creating it may then run in a transaction; Migrate refreshes
		// the whole history right after.
		b.WriteString("\nWITH NO DATA")
	}
	return b.String()
}

// columnDocs returns the COMMENT ON COLUMN texts of a, by column name.
func (a minuteAggregate) columnDocs() [][2]string {
	docs := [][2]string{
		{"bucket", "start of the minute (UTC, aligned like time_bucket)"},
		{"channel_id", "Sora channel id"},
		{"session_id", "Sora session id"},
		{"connection_id", "Sora connection id"},
		{"stats_id", "id of the RTCStats object"},
	}
	for _, c := range a.columns {
		docs = append(docs, [2]string{c.name, c.doc})
	}
	return docs
}

// fingerprint identifies a definition: a hash of the statements that create an object,
// comments included, so that any change to them makes Migrate create the object again.
func fingerprint(parts ...string) string {
	h := sha256.New()
	for _, p := range parts {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil))[:16]
}

// definition returns the fingerprint of a in the form for ext.
func (a minuteAggregate) definition(ext string) string {
	parts := []string{a.createSQL(ext), a.doc}
	for _, d := range a.columnDocs() {
		parts = append(parts, d[0], d[1])
	}
	return fingerprint(parts...)
}
