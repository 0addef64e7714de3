package deploytest

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"kohaku/pkg/normalize"
	"kohaku/pkg/sora"
	"kohaku/schema"
	"kohaku/testsupport/dbtest"
	"kohaku/testsupport/testenv"
	"kohaku/tools/internal/sim"
)

// simPlan is the impairment plan of TestAnalyzeFindsTheSimulatorsImpairments: one window
// per kind of issue, apart from each other by more than a reporting interval, and the kind
// of issue each window must give.
var simPlan = []struct {
	impairment string
	kind       string
}{
	{"loss=20%@20s-40s", "packet_loss"},
	{"freeze@50s", "video_freeze"},
	{"rtt=600ms@70s-90s", "high_rtt"},
	{"jitter=80ms@100s-120s", "high_jitter"},
	{"conceal=12%@130s-150s", "audio_concealment"},
	{"cpu@160s-180s", "quality_limited_cpu"},
	{"bandwidth@190s-210s", "quality_limited_bandwidth"},
	{"stop@220s-240s", "media_stopped"},
	{"relay@250s-270s", "relayed_or_tcp"},
	{"ice=disconnected@280s-290s", "ice_dtls_not_connected"},
	{"gap@300s-330s", "missing_reports"},
	{"remoteloss=15%@340s-360s", "remote_packet_loss"},
	{"tcp@370s-380s", "relayed_or_tcp"},
}

// simEvery is how often the simulated connections report.
const simEvery = 5 * time.Second

// storeSimulatedCall runs the simulator on a clock of its own from start, every simEvery up
// to end, and stores each report as the writer would (normalized, by COPY).
func storeSimulatedCall(t *testing.T, conn *pgx.Conn, conns []*sim.Connection, start time.Time, end time.Duration) {
	t.Helper()
	ctx := t.Context()
	for at := time.Duration(0); at <= end; at += simEvery {
		now := start.Add(at)
		for _, c := range conns {
			if c.Silent(now) {
				continue
			}
			rows, err := normalize.Message(sora.TypeUserAgent, c.Report(now))
			if err != nil {
				t.Fatalf("normalize the report of %s at %s: %v", c.ClientID, at, err)
			}
			for table, rs := range rows.Tables {
				if _, err := conn.CopyFrom(ctx, pgx.Identifier{table}, normalize.Columns(table), pgx.CopyFromRows(rs)); err != nil {
					t.Fatalf("copy into %s: %v", table, err)
				}
			}
		}
	}
}

// TestAnalyzeFindsTheSimulatorsImpairments is issue 15's end-to-end check: sora-sim's
// impairment plan on half of the connections of a steady network, and exactly the injected
// intervals found, start and end within one reporting interval of each window, on the
// impaired connections, and nothing on the clean ones.
func TestAnalyzeFindsTheSimulatorsImpairments(t *testing.T) {
	parts := make([]string, len(simPlan))
	for i, p := range simPlan {
		parts[i] = p.impairment
	}
	plan, err := sim.ParseImpairments(strings.Join(parts, ","))
	if err != nil {
		t.Fatal(err)
	}
	tmpl, err := sim.FixtureTemplate()
	if err != nil {
		t.Fatal(err)
	}
	for _, db := range []struct {
		name string
		url  func(testing.TB) string
	}{
		{"postgres", dbtest.Database},
		{"timescaledb", func(t testing.TB) string { return dbtest.Schema(t, testenv.TimescaleDB(t)) }},
	} {
		t.Run(db.name, func(t *testing.T) {
			conn, err := pgx.Connect(t.Context(), db.url(t))
			if err != nil {
				t.Fatalf("connect: %v", err)
			}
			t.Cleanup(func() { conn.Close(context.Background()) })
			if _, err := schema.Migrate(t.Context(), conn, schema.Options{}); err != nil {
				t.Fatalf("migrate: %v", err)
			}
			// A start of its own for each run gives connection ids of its own.
			start := time.Now().Add(-time.Hour).Truncate(time.Second)
			conns, err := sim.NewConnections(tmpl, sim.Options{Connections: 6, Channels: 1, Seed: 15, Steady: true,
				Impair: plan, Impaired: 3}, start)
			if err != nil {
				t.Fatal(err)
			}
			const end = 400 * time.Second
			storeSimulatedCall(t, conn, conns, start, end)
			// Two periods cut in the middle of a window, as the periodic analysis would.
			for _, p := range [][2]time.Duration{{-time.Minute, 135 * time.Second}, {135 * time.Second, end + time.Minute}} {
				if _, err := schema.Analyze(t.Context(), conn, start.Add(p[0]), start.Add(p[1])); err != nil {
					t.Fatal(err)
				}
			}
			checkSimulatedIssues(t, conn, conns, start)
		})
	}
}

// checkSimulatedIssues compares the stored intervals with the plan.
func checkSimulatedIssues(t *testing.T, conn *pgx.Conn, conns []*sim.Connection, start time.Time) {
	t.Helper()
	rows, err := conn.Query(t.Context(), `SELECT connection_id, coalesce(stats_id, ''), kind, started_at, ended_at FROM kohaku_issue`)
	if err != nil {
		t.Fatal(err)
	}
	type found struct {
		statsID, kind string
		start, end    time.Duration
	}
	byConn := map[string][]found{}
	for rows.Next() {
		var id string
		var f found
		var s, e time.Time
		if err := rows.Scan(&id, &f.statsID, &f.kind, &s, &e); err != nil {
			t.Fatal(err)
		}
		f.start, f.end = s.Sub(start), e.Sub(start)
		byConn[id] = append(byConn[id], f)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	for _, c := range conns {
		got := byConn[c.ConnectionID]
		sort.Slice(got, func(a, b int) bool { return got[a].start < got[b].start })
		if len(c.Impairments()) == 0 {
			for _, f := range got {
				t.Errorf("clean connection %s: %s %s from %s to %s", c.ClientID, f.kind, f.statsID, f.start, f.end)
			}
			continue
		}
		origin := c.Origin().Sub(start)
		matched := make([]bool, len(got))
		for i, imp := range c.Impairments() {
			kind := simPlan[i].kind
			from, to := origin+imp.Start, origin+imp.End
			n := 0
			for k, f := range got {
				if f.kind != kind || absDuration(f.start-from) > simEvery || absDuration(f.end-to) > simEvery {
					continue
				}
				matched[k] = true
				n++
			}
			if n == 0 {
				t.Errorf("connection %s: no %s interval for %s (from %s to %s)", c.ClientID, kind, imp, from, to)
			}
		}
		for k, f := range got {
			if !matched[k] {
				t.Errorf("connection %s: %s %s from %s to %s matches no impairment of the plan", c.ClientID, f.kind, f.statsID, f.start, f.end)
			}
		}
		t.Logf("connection %s: %d intervals for %d impairments", c.ClientID, len(got), len(c.Impairments()))
		if t.Failed() {
			var all []string
			for _, f := range got {
				all = append(all, fmt.Sprintf("%s %s %s-%s", f.kind, f.statsID, f.start, f.end))
			}
			t.Logf("connection %s (origin %s): %s", c.ClientID, origin, strings.Join(all, "; "))
		}
	}
}

func absDuration(d time.Duration) time.Duration {
	if d < 0 {
		return -d
	}
	return d
}
