package schema

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// Hand-made calls for the issue analysis (analysis/10_issues.sql): a healthy sendrecv
// connection reporting every 10 s, which a case then spoils in one way, and the intervals
// worked out by hand that the analysis must find.

// issueBase is when the hand-made calls start.
var issueBase = time.Date(2025, 3, 1, 10, 0, 0, 0, time.UTC)

// reportEvery is the reporting interval of the hand-made calls.
const reportEvery = 10 * time.Second

// callObject is one stats object of a hand-made connection.
type callObject struct{ table, statsID string }

var (
	inAudio   = callObject{"rtc_inbound_rtp_stats", "IA"}
	inVideo   = callObject{"rtc_inbound_rtp_stats", "IV"}
	outVideo  = callObject{"rtc_outbound_rtp_stats", "OV"}
	remVideo  = callObject{"rtc_remote_inbound_rtp_stats", "RV"}
	transport = callObject{"rtc_transport_stats", "T"}
	pair1     = callObject{"rtc_candidate_pair_stats", "CP1"}
	pair2     = callObject{"rtc_candidate_pair_stats", "CP2"}
	local1    = callObject{"rtc_ice_candidate_stats", "L1"}
	local2    = callObject{"rtc_ice_candidate_stats", "L2"}
	peerConn  = callObject{"rtc_peer_connection_stats", "P"}
)

// call is a hand-made connection: per report, the values of each object's columns.
type call struct {
	connectionID string
	reports      []map[callObject]map[string]any // nil: the report is missing
}

// newCall returns a healthy connection with n reports: audio and video received, video sent,
// no loss, low jitter and round-trip time, a host UDP candidate pair, all connected.
func newCall(connectionID string, n int) *call {
	c := &call{connectionID: connectionID}
	for i := range n {
		k := int64(i)
		c.reports = append(c.reports, map[callObject]map[string]any{
			inAudio: {"kind": "audio", "packets_received": 500 * k, "packets_lost": int64(0), "jitter": 0.005,
				"total_samples_received": 480000 * k, "concealed_samples": int64(0)},
			inVideo: {"kind": "video", "packets_received": 1000 * k, "packets_lost": int64(0), "jitter": 0.01,
				"freeze_count": int64(0), "total_freezes_duration": 0.0},
			outVideo: {"kind": "video", "packets_sent": 1000 * k, "active": true, "quality_limitation_reason": "none",
				"quality_limitation_durations": map[string]float64{"none": 10 * float64(i), "cpu": 0, "bandwidth": 0, "other": 0}},
			remVideo:  {"kind": "video", "fraction_lost": 0.0, "round_trip_time": 0.05},
			transport: {"ice_state": "connected", "dtls_state": "connected", "selected_candidate_pair_id": "CP1"},
			pair1:     {"local_candidate_id": "L1", "state": "succeeded", "current_round_trip_time": 0.05},
			local1:    {"stats_type": "local-candidate", "candidate_type": "host", "protocol": "udp"},
			peerConn:  {"data_channels_opened": int64(1)},
		})
	}
	return c
}

// set sets col of o in reports from to to (inclusive).
func (c *call) set(o callObject, col string, v any, from, to int) *call {
	for i := from; i <= to; i++ {
		c.reports[i][o][col] = v
	}
	return c
}

// add adds d to the counter col of o in every report from from on: a step in a cumulative
// counter.
func (c *call) add(o callObject, col string, d int64, from int) *call {
	for i := from; i < len(c.reports); i++ {
		if c.reports[i] != nil {
			c.reports[i][o][col] = c.reports[i][o][col].(int64) + d
		}
	}
	return c
}

// addSeconds is add for a counter of seconds.
func (c *call) addSeconds(o callObject, col string, d float64, from int) *call {
	for i := from; i < len(c.reports); i++ {
		if c.reports[i] != nil {
			c.reports[i][o][col] = c.reports[i][o][col].(float64) + d
		}
	}
	return c
}

// limit makes the encoder of outVideo limited by reason for share of reports from to to.
func (c *call) limit(reason string, share float64, from, to int) *call {
	var extra float64
	for i := range c.reports {
		if i >= from && i <= to {
			extra += share * reportEvery.Seconds()
		}
		d := c.reports[i][outVideo]["quality_limitation_durations"].(map[string]float64)
		d = maps.Clone(d)
		d[reason] += extra
		d["none"] -= extra
		c.reports[i][outVideo]["quality_limitation_durations"] = d
	}
	return c
}

// drop removes reports from to to altogether.
func (c *call) drop(from, to int) *call {
	for i := from; i <= to; i++ {
		c.reports[i] = nil
	}
	return c
}

// store inserts the call's rows.
func (c *call) store(t testing.TB, conn *pgx.Conn) {
	t.Helper()
	ctx := context.Background()
	for i, r := range c.reports {
		at := issueBase.Add(time.Duration(i) * reportEvery)
		for o, vals := range r {
			cols := []string{"time", "channel_id", "session_id", "connection_id", "stats_id", "stats_timestamp"}
			args := []any{at, "ch-issues", "session-" + c.connectionID, c.connectionID, o.statsID, float64(at.UnixMilli())}
			for _, k := range slices.Sorted(maps.Keys(vals)) {
				cols = append(cols, k)
				args = append(args, vals[k])
			}
			ph := make([]string, len(args))
			for k := range ph {
				ph[k] = fmt.Sprintf("$%d", k+1)
			}
			sql := fmt.Sprintf("INSERT INTO %s (%s) VALUES (%s)", o.table, strings.Join(cols, ", "), strings.Join(ph, ", "))
			if _, err := conn.Exec(ctx, sql, args...); err != nil {
				t.Fatalf("%s: %v", sql, err)
			}
		}
	}
}

// issue is a stored issue interval as the tests compare it: times in seconds from
// issueBase.
type issue struct {
	Connection, StatsID, Kind, Severity string
	Start, End                          float64
	Evidence                            map[string]any
}

func (i issue) String() string {
	ev, _ := json.Marshal(i.Evidence)
	return fmt.Sprintf("%s %s/%s %s [%gs, %gs] %s", i.Kind, i.Connection, i.StatsID, i.Severity, i.Start, i.End, ev)
}

// readIssues returns every stored interval, in a stable order.
func readIssues(t testing.TB, conn *pgx.Conn) []issue {
	t.Helper()
	rows, err := conn.Query(context.Background(), `SELECT connection_id, coalesce(stats_id, ''), kind, severity, started_at, ended_at, evidence
FROM kohaku_issue ORDER BY connection_id, kind, stats_id, started_at`)
	if err != nil {
		t.Fatal(err)
	}
	var out []issue
	for rows.Next() {
		var i issue
		var s, e time.Time
		if err := rows.Scan(&i.Connection, &i.StatsID, &i.Kind, &i.Severity, &s, &e, &i.Evidence); err != nil {
			t.Fatal(err)
		}
		i.Start, i.End = s.Sub(issueBase).Seconds(), e.Sub(issueBase).Seconds()
		out = append(out, i)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// analyze runs Analyze over [since, until] given in seconds from issueBase.
func analyze(t testing.TB, conn *pgx.Conn, since, until float64) AnalyzeResult {
	t.Helper()
	res, err := Analyze(context.Background(), conn,
		issueBase.Add(time.Duration(since*float64(time.Second))), issueBase.Add(time.Duration(until*float64(time.Second))))
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// issueCase is one hand-made call and the intervals it must give.
type issueCase struct {
	name string
	call *call
	want []issue // Connection is filled in from the call
}

// issueCases returns the hand-made calls, each on a connection of its own.
func issueCases() []issueCase {
	ev := func(kv ...any) map[string]any {
		m := map[string]any{}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i].(string)] = kv[i+1]
		}
		return m
	}
	return []issueCase{
		{name: "a healthy call has no issue", call: newCall("healthy", 12)},
		{
			// Reports 4 and 6 lose 50 of 1050 packets (4.76 %), report 5 loses 200 of
			// 1200 (16.67 %, over the 10 % of critical).
			name: "inbound packet loss",
			call: newCall("loss", 12).add(inVideo, "packets_lost", 50, 4).add(inVideo, "packets_lost", 200, 5).add(inVideo, "packets_lost", 50, 6),
			want: []issue{{StatsID: "IV", Kind: "packet_loss", Severity: "critical", Start: 40, End: 60,
				Evidence: ev("loss_percent", 16.67, "packets_lost", 200.0, "packets_expected", 1200.0)}},
		},
		{
			name: "loss below the warning is no issue",
			call: newCall("light-loss", 12).add(inVideo, "packets_lost", 20, 4),
		},
		{
			name: "loss reported by the remote side",
			call: newCall("remote-loss", 12).set(remVideo, "fraction_lost", 0.05, 3, 4),
			want: []issue{{StatsID: "RV", Kind: "remote_packet_loss", Severity: "warning", Start: 30, End: 40,
				Evidence: ev("loss_percent", 5.0)}},
		},
		{
			name: "high round-trip time of the selected pair",
			call: newCall("rtt", 12).set(pair1, "current_round_trip_time", 0.35, 7, 7).set(pair1, "current_round_trip_time", 0.6, 8, 8),
			want: []issue{{Kind: "high_rtt", Severity: "critical", Start: 70, End: 80, Evidence: ev("round_trip_time", 0.6)}},
		},
		{
			name: "high jitter",
			call: newCall("jitter", 12).set(inAudio, "jitter", 0.04, 2, 3),
			want: []issue{{StatsID: "IA", Kind: "high_jitter", Severity: "warning", Start: 20, End: 30, Evidence: ev("jitter", 0.04)}},
		},
		{
			// 19,200 of 480,000 samples: 4 %.
			name: "audio concealment",
			call: newCall("concealment", 12).add(inAudio, "concealed_samples", 19200, 6),
			want: []issue{{StatsID: "IA", Kind: "audio_concealment", Severity: "warning", Start: 60, End: 60,
				Evidence: ev("concealed_percent", 4.0)}},
		},
		{
			name: "video freezes, the second one long",
			call: newCall("freeze", 12).add(inVideo, "freeze_count", 1, 5).addSeconds(inVideo, "total_freezes_duration", 0.5, 5).
				add(inVideo, "freeze_count", 1, 6).addSeconds(inVideo, "total_freezes_duration", 2.5, 6),
			want: []issue{{StatsID: "IV", Kind: "video_freeze", Severity: "critical", Start: 50, End: 60,
				Evidence: ev("freezes", 1.0, "freeze_seconds", 2.5)}},
		},
		{
			name: "quality limited by the CPU for 60 % of two reports",
			call: newCall("cpu", 12).limit("cpu", 0.6, 3, 4),
			want: []issue{{StatsID: "OV", Kind: "quality_limited_cpu", Severity: "warning", Start: 30, End: 40,
				Evidence: ev("limited_percent", 60.0)}},
		},
		{
			name: "quality limited by bandwidth all the time",
			call: newCall("bandwidth", 12).limit("bandwidth", 1, 8, 9),
			want: []issue{{StatsID: "OV", Kind: "quality_limited_bandwidth", Severity: "critical", Start: 80, End: 90,
				Evidence: ev("limited_percent", 100.0)}},
		},
		{
			name: "quality limitation from the reason alone",
			call: newCall("reason", 12).set(outVideo, "quality_limitation_durations", nil, 0, 11).
				set(outVideo, "quality_limitation_reason", "bandwidth", 2, 2),
			want: []issue{{StatsID: "OV", Kind: "quality_limited_bandwidth", Severity: "critical", Start: 20, End: 20,
				Evidence: ev("limited_percent", 100.0)}},
		},
		{
			name: "received media stops",
			call: newCall("stopped", 12).add(inVideo, "packets_received", -1000, 5).add(inVideo, "packets_received", -1000, 6).
				add(inVideo, "packets_received", -1000, 7),
			want: []issue{{StatsID: "IV", Kind: "media_stopped", Severity: "critical", Start: 50, End: 70,
				Evidence: ev("packets_per_second", 0.0)}},
		},
		{
			name: "sent media stops on an active stream",
			call: newCall("send-stopped", 12).add(outVideo, "packets_sent", -1000, 3).add(outVideo, "packets_sent", -1000, 4),
			want: []issue{{StatsID: "OV", Kind: "media_stopped", Severity: "critical", Start: 30, End: 40,
				Evidence: ev("packets_per_second", 0.0)}},
		},
		{
			name: "an inactive sent stream is not stopped",
			call: newCall("inactive", 12).add(outVideo, "packets_sent", -1000, 3).add(outVideo, "packets_sent", -1000, 4).
				set(outVideo, "active", false, 3, 4),
		},
		{
			name: "a switch to TURN over TLS",
			call: func() *call {
				c := newCall("relay", 12).set(transport, "selected_candidate_pair_id", "CP2", 4, 11)
				for i := 4; i < 12; i++ {
					c.reports[i][pair2] = map[string]any{"local_candidate_id": "L2", "state": "succeeded", "current_round_trip_time": 0.08}
					c.reports[i][local2] = map[string]any{"stats_type": "local-candidate", "candidate_type": "relay", "protocol": "udp", "relay_protocol": "tls"}
				}
				return c
			}(),
			want: []issue{
				{Kind: "candidate_pair_switched", Severity: "warning", Start: 40, End: 40, Evidence: ev("selected_candidate_pair_id", "CP2")},
				{Kind: "relayed_or_tcp", Severity: "critical", Start: 40, End: 110,
					Evidence: ev("candidate_type", "relay", "protocol", "udp", "relay_protocol", "tls")},
			},
		},
		{
			name: "ICE disconnected for two reports",
			call: newCall("ice", 12).set(transport, "ice_state", "disconnected", 6, 7),
			want: []issue{{Kind: "ice_dtls_not_connected", Severity: "warning", Start: 60, End: 70,
				Evidence: ev("ice_state", "disconnected", "dtls_state", "connected")}},
		},
		{
			name: "DTLS failed",
			call: newCall("dtls", 12).set(transport, "dtls_state", "failed", 10, 11),
			want: []issue{{Kind: "ice_dtls_not_connected", Severity: "critical", Start: 100, End: 110,
				Evidence: ev("ice_state", "connected", "dtls_state", "failed")}},
		},
		{
			// Reports 5 to 7 never came: 40 s from report 4 to report 8, four intervals.
			name: "three reports missing",
			call: newCall("gap", 12).drop(5, 7),
			want: []issue{{Kind: "missing_reports", Severity: "warning", Start: 40, End: 80,
				Evidence: ev("gap_seconds", 40.0, "report_interval_seconds", 10.0)}},
		},
		{
			name: "two reports missing is no issue",
			call: newCall("short-gap", 12).drop(5, 6),
		},
		{
			name: "eleven reports missing",
			call: newCall("long-gap", 20).drop(4, 14),
			want: []issue{{Kind: "missing_reports", Severity: "critical", Start: 30, End: 150,
				Evidence: ev("gap_seconds", 120.0, "report_interval_seconds", 10.0)}},
		},
	}
}

// wantIssues returns the issues of cases, with their connections, in readIssues' order.
func wantIssues(cases []issueCase) []issue {
	var out []issue
	for _, c := range cases {
		for _, w := range c.want {
			w.Connection = c.call.connectionID
			out = append(out, w)
		}
	}
	return sortIssues(out)
}

// sortIssues sorts is in readIssues' order and returns it.
func sortIssues(out []issue) []issue {
	sort.SliceStable(out, func(a, b int) bool {
		x, y := out[a], out[b]
		if x.Connection != y.Connection {
			return x.Connection < y.Connection
		}
		if x.Kind != y.Kind {
			return x.Kind < y.Kind
		}
		if x.StatsID != y.StatsID {
			return x.StatsID < y.StatsID
		}
		return x.Start < y.Start
	})
	return out
}

func TestAnalyzeFindsTheIssuesOfHandMadeCalls(t *testing.T) {
	for _, db := range databases {
		t.Run(db.name, func(t *testing.T) {
			conn := freshConn(t, db.url(t))
			mustMigrate(t, conn, Options{})
			for _, tc := range issueCases() {
				tc.call.store(t, conn)
			}
			analyze(t, conn, -60, 300)
			got := readIssues(t, conn)
			for _, tc := range issueCases() {
				t.Run(tc.name, func(t *testing.T) {
					var mine []issue
					for _, g := range got {
						if g.Connection == tc.call.connectionID {
							mine = append(mine, g)
						}
					}
					want := wantIssues([]issueCase{tc})
					if !reflect.DeepEqual(mine, want) {
						t.Errorf("got intervals\n\t%s\nwant\n\t%s", joinIssues(mine), joinIssues(want))
					}
				})
			}
		})
	}
}

func joinIssues(is []issue) string {
	if len(is) == 0 {
		return "(none)"
	}
	s := make([]string, len(is))
	for i, x := range is {
		s[i] = x.String()
	}
	return strings.Join(s, "\n\t")
}

func TestAnalyzeGivesTheSameIntervalsHoweverThePeriodIsCut(t *testing.T) {
	// Periods in seconds from issueBase; consecutive ones share their boundary, as the
	// writer's periodic analysis does.
	cuts := func(from, to, step, width float64) [][2]float64 {
		var out [][2]float64
		for s := from; s < to; s += step {
			out = append(out, [2]float64{s, s + width})
		}
		return out
	}
	schemes := []struct {
		name    string
		periods [][2]float64
	}{
		{"at every report", cuts(-10, 200, 10, 10)},
		{"between reports", cuts(-5, 200, 10, 10)},
		{"every 25 s", cuts(-7, 200, 25, 25)},
		{"overlapping, like the periodic analysis", cuts(-30, 200, 10, 30)},
		{"in one period, backwards in two halves", [][2]float64{{75, 300}, {-60, 75}}},
	}
	for _, db := range databases {
		t.Run(db.name, func(t *testing.T) {
			conn := freshConn(t, db.url(t))
			mustMigrate(t, conn, Options{})
			cases := issueCases()
			for _, tc := range cases {
				tc.call.store(t, conn)
			}
			analyze(t, conn, -60, 300)
			whole := readIssues(t, conn)
			if want := wantIssues(cases); !reflect.DeepEqual(whole, want) {
				t.Fatalf("in one period: got\n\t%s\nwant\n\t%s", joinIssues(whole), joinIssues(want))
			}
			for _, sc := range schemes {
				t.Run(sc.name, func(t *testing.T) {
					mustExec(t, conn, "DELETE FROM kohaku_issue")
					for _, p := range sc.periods {
						analyze(t, conn, p[0], p[1])
					}
					if got := readIssues(t, conn); !reflect.DeepEqual(got, whole) {
						t.Errorf("got\n\t%s\nwant, as in one period,\n\t%s", joinIssues(got), joinIssues(whole))
					}
				})
			}
		})
	}
}

// storedIssue is a row of kohaku_issue with its identity.
type storedIssue struct {
	id         int64
	analyzedAt time.Time
	issue
}

func readStoredIssues(t testing.TB, conn *pgx.Conn) map[int64]storedIssue {
	t.Helper()
	rows, err := conn.Query(context.Background(), `SELECT id, analyzed_at, connection_id, coalesce(stats_id, ''), kind, severity, started_at, ended_at, evidence FROM kohaku_issue`)
	if err != nil {
		t.Fatal(err)
	}
	out := map[int64]storedIssue{}
	for rows.Next() {
		var s storedIssue
		var a, b time.Time
		if err := rows.Scan(&s.id, &s.analyzedAt, &s.Connection, &s.StatsID, &s.Kind, &s.Severity, &a, &b, &s.Evidence); err != nil {
			t.Fatal(err)
		}
		s.Start, s.End = a.Sub(issueBase).Seconds(), b.Sub(issueBase).Seconds()
		out[s.id] = s
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestChangingAThresholdRewritesTheAffectedIntervalsAndNothingElse(t *testing.T) {
	tests := []struct {
		name    string
		update  string
		changed []string // kinds whose intervals change
		want    func([]issue) []issue
	}{
		{
			name:   "the same thresholds rewrite nothing",
			update: "UPDATE kohaku_issue_threshold SET value = value WHERE kind = 'packet_loss'",
			want:   func(is []issue) []issue { return is },
		},
		{
			name:    "a higher critical loss turns the loss interval into a warning",
			update:  "UPDATE kohaku_issue_threshold SET value = 20 WHERE kind = 'packet_loss' AND name = 'critical'",
			changed: []string{"packet_loss"},
			want: func(is []issue) []issue {
				for i := range is {
					if is[i].Kind == "packet_loss" {
						is[i].Severity = "warning"
					}
				}
				return is
			},
		},
		{
			name:    "a higher concealment warning removes the concealment interval",
			update:  "UPDATE kohaku_issue_threshold SET value = 5 WHERE kind = 'audio_concealment' AND name = 'warning'",
			changed: []string{"audio_concealment"},
			want: func(is []issue) []issue {
				return slices.DeleteFunc(is, func(i issue) bool { return i.Kind == "audio_concealment" })
			},
		},
		{
			name:    "a lower jitter warning lengthens the jitter interval",
			update:  "UPDATE kohaku_issue_threshold SET value = 0.005 WHERE kind = 'high_jitter' AND name = 'warning'",
			changed: []string{"high_jitter"},
			want: func(is []issue) []issue {
				// Every received stream now jitters all call long (audio 0.005 s,
				// video 0.01 s); the jitter case's audio peaks at 0.04.
				is = slices.DeleteFunc(is, func(i issue) bool { return i.Kind == "high_jitter" })
				for _, tc := range issueCases() {
					c := tc.call
					// Reports around missing ones are consecutive: one run.
					last := float64(len(c.reports)-1) * 10
					j := 0.005
					if c.connectionID == "jitter" {
						j = 0.04
					}
					is = append(is,
						issue{Connection: c.connectionID, StatsID: "IA", Kind: "high_jitter", Severity: "warning",
							Start: 0, End: last, Evidence: map[string]any{"jitter": j}},
						issue{Connection: c.connectionID, StatsID: "IV", Kind: "high_jitter", Severity: "warning",
							Start: 0, End: last, Evidence: map[string]any{"jitter": 0.01}})
				}
				return is
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			conn := freshConn(t, postgresURL(t))
			mustMigrate(t, conn, Options{})
			cases := issueCases()
			for _, tc := range cases {
				tc.call.store(t, conn)
			}
			analyze(t, conn, -60, 300)
			before := readStoredIssues(t, conn)
			mustExec(t, conn, tt.update)
			analyze(t, conn, -60, 300)
			after := readStoredIssues(t, conn)

			// Unaffected intervals keep their row: same id, same analyzed_at, same figures.
			for id, b := range before {
				if slices.Contains(tt.changed, b.Kind) {
					continue
				}
				if a, ok := after[id]; !ok || !reflect.DeepEqual(a, b) {
					t.Errorf("interval %d (%s) was rewritten: now %+v", id, b.issue, a)
				}
			}
			for id, a := range after {
				if _, ok := before[id]; ok || slices.Contains(tt.changed, a.Kind) {
					continue
				}
				t.Errorf("new interval %d of a kind the change does not touch: %s", id, a.issue)
			}
			got := readIssues(t, conn)
			if want := sortIssues(tt.want(wantIssues(cases))); !reflect.DeepEqual(got, want) {
				t.Errorf("got\n\t%s\nwant\n\t%s", joinIssues(got), joinIssues(want))
			}
		})
	}
}
