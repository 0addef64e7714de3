package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"kohaku/pkg/sora"
	"kohaku/testsupport/testenv"
	"kohaku/writer/internal/writertest"
)

// lossyCall returns the reports of one connection receiving video, every 10 s with the last
// at last: n reports, of which the last three lose 100 of every 1,100 packets (9.09 %, a
// warning) and the one before them 300 of 1,300 (23 %, critical).
func lossyCall(t *testing.T, connectionID string, last time.Time, n int) []writertest.Message {
	t.Helper()
	var out []writertest.Message
	var received, lost int
	for i := range n {
		at := last.Add(time.Duration(i-n+1) * 10 * time.Second).UTC()
		if i > 0 {
			received += 1000
		}
		switch {
		case i == n-4:
			lost += 300
		case i > n-4:
			lost += 100
		}
		ms := float64(at.UnixMicro()) / 1000
		body, err := json.Marshal(map[string]any{
			"type": sora.TypeUserAgent, "timestamp": at.Format("2006-01-02T15:04:05.000000Z"),
			"label": "test", "version": "2025.1.0", "node_name": "node@127.0.0.1",
			"multistream": true, "simulcast": false, "spotlight": false, "role": "recvonly",
			"channel_id": "analyze-test", "client_id": "client", "session_id": "S0000000000000000000000000",
			"connection_id": connectionID,
			"stats": []map[string]any{
				{"type": "peer-connection", "id": "P", "timestamp": ms},
				{"type": "inbound-rtp", "id": "IV", "timestamp": ms, "kind": "video", "ssrc": 1,
					"packetsReceived": received, "packetsLost": lost, "jitter": 0.01},
			},
		})
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, writertest.Message{ExporterType: sora.TypeUserAgent, Body: body})
	}
	return out
}

// lossInterval reads the packet-loss interval of connectionID: its start and end, as
// offsets from last, and its severity.
func lossInterval(ctx context.Context, pool *pgxpool.Pool, connectionID string, last time.Time) (string, error) {
	var start, end time.Time
	var severity string
	var n int
	err := pool.QueryRow(ctx, `SELECT count(*) OVER (), started_at, ended_at, severity FROM kohaku_issue
WHERE connection_id = $1 AND kind = 'packet_loss' LIMIT 1`, connectionID).Scan(&n, &start, &end, &severity)
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("%d interval(s): %s from %s to %s", n, severity,
		start.Sub(last).Round(time.Millisecond), end.Sub(last).Round(time.Millisecond)), nil
}

// startAnalyzingWriter starts a ready writer on a JetStream and a database of its own,
// with the periodic analysis every every, and returns it, its JetStream and a pool on its
// database.
func startAnalyzingWriter(t *testing.T, every string) (*process, *writertest.JetStream, *pgxpool.Pool) {
	t.Helper()
	js := writertest.NewJetStream(t)
	db := writertest.Database(t)
	p := startWriter(t, map[string]string{
		"KOHAKU_NATS_URL":      js.Server.URL(),
		"KOHAKU_DATABASE_URL":  db,
		"KOHAKU_ANALYZE_EVERY": every,
	})
	p.waitReady(t)
	return p, js, writertest.Pool(t, db)
}

// TestRunningWriterFindsIssuesWithinAMinute runs a writer with the periodic analysis and
// publishes a lossy call: live, and as a backlog an hour old (drained after an outage),
// which the live window does not reach but the writer analyzes because it stored it.
func TestRunningWriterFindsIssuesWithinAMinute(t *testing.T) {
	tests := []struct {
		name string
		age  time.Duration // of the call's last report when published
	}{
		{"live reports", 0},
		{"a backlog an hour old", time.Hour},
	}
	for k, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, js, pool := startAnalyzingWriter(t, "5s")

			last := time.Now().Add(-tt.age).Truncate(time.Millisecond)
			conn := fmt.Sprintf("C%025d", k+1)
			for _, m := range lossyCall(t, conn, last, 8) {
				js.Publish(t, m)
			}
			published := time.Now()
			want := "1 interval(s): critical from -30s to 0s"
			testenv.Eventually(t, time.Minute, func() error {
				got, err := lossInterval(context.Background(), pool, conn, last)
				if err != nil {
					return err
				}
				if got != want {
					return fmt.Errorf("got %s, want %s", got, want)
				}
				return nil
			})
			t.Logf("the interval was stored %s after the reports were published", time.Since(published).Round(100*time.Millisecond))

			before := len(p.Output())
			p.Signal(syscall.SIGTERM)
			if code := p.wait(t, 30*time.Second); code != 0 {
				t.Errorf("exit code after SIGTERM: %d, want 0", code)
			}
			checkCleanStop(t, p.Output()[before:])
		})
	}
}

// TestRunningWriterAnalyzesInSetsOfConnections publishes lossy calls of more connections
// than the periodic analysis takes in its first set: it must analyze them in several
// transactions, and find the interval of every one.
func TestRunningWriterAnalyzesInSetsOfConnections(t *testing.T) {
	const calls = 3 * firstSlice
	js := writertest.NewJetStream(t)
	db := writertest.Database(t)
	p := startWriter(t, map[string]string{
		"KOHAKU_NATS_URL": js.Server.URL(), "KOHAKU_DATABASE_URL": db,
		"KOHAKU_ANALYZE_EVERY": "2s", "KOHAKU_LOG_LEVEL": "debug",
	})
	p.waitReady(t)
	pool := writertest.Pool(t, db)
	last := time.Now().Truncate(time.Millisecond)
	for k := range calls {
		for _, m := range lossyCall(t, fmt.Sprintf("S%025d", k), last, 8) {
			js.Publish(t, m)
		}
	}
	testenv.Eventually(t, time.Minute, func() error {
		var n int
		err := pool.QueryRow(context.Background(), `SELECT count(DISTINCT connection_id) FROM kohaku_issue
WHERE kind = 'packet_loss' AND severity = 'critical'`).Scan(&n)
		if err != nil {
			return err
		}
		if n != calls {
			return fmt.Errorf("%d of %d connections have their loss interval", n, calls)
		}
		return nil
	})
	// The run logs when all its sets are done, a while after the last interval is stored.
	done := regexp.MustCompile(`"msg":"periodic analysis done".*"connections":(\d+),"sets":(\d+)`)
	testenv.Eventually(t, 30*time.Second, func() error {
		runs := done.FindAllStringSubmatch(p.Output(), -1)
		for _, r := range runs {
			if r[2] != "1" {
				return nil
			}
		}
		return fmt.Errorf("no periodic analysis ran in more than one set of connections: %q", runs)
	})
}

func TestNextSlice(t *testing.T) {
	tests := []struct {
		name string
		n    int
		took time.Duration
		want int
	}{
		{"on time keeps the size", 40, analyzeSlice, 40},
		{"twice as slow halves it", 40, 2 * analyzeSlice, 20},
		{"faster grows it at most twofold", 40, analyzeSlice / 10, 80},
		{"no time measured grows it twofold", 40, 0, 80},
		{"never below one connection", 1, time.Minute, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := nextSlice(tt.n, tt.took); got != tt.want {
				t.Errorf("nextSlice(%d, %s) = %d, want %d", tt.n, tt.took, got, tt.want)
			}
		})
	}
}

// TestRunningWriterJudgesLateReportsWithTheirNeighbours withholds three reports of a lossy
// call, so that the periodic analysis finds a gap (missing_reports), then publishes them
// late: the reports after them, analyzed already, must be judged again, so that the gap
// goes and the loss interval is the one of the call sent in order.
func TestRunningWriterJudgesLateReportsWithTheirNeighbours(t *testing.T) {
	_, js, pool := startAnalyzingWriter(t, "2s")

	last := time.Now().Truncate(time.Millisecond)
	const conn = "L0000000000000000000000001"
	call := lossyCall(t, conn, last, 10) // every 10 s; the loss starts at the seventh
	late := call[2:5]                    // a gap of 40 s after the second report
	for _, m := range append(call[:2:2], call[5:]...) {
		js.Publish(t, m)
	}
	gaps := func() (int, error) {
		var n int
		err := pool.QueryRow(context.Background(),
			`SELECT count(*) FROM kohaku_issue WHERE connection_id = $1 AND kind = 'missing_reports'`, conn).Scan(&n)
		return n, err
	}
	testenv.Eventually(t, time.Minute, func() error {
		if n, err := gaps(); err != nil || n != 1 {
			return fmt.Errorf("%d missing_reports intervals (%v), want the gap's", n, err)
		}
		return nil
	})

	for _, m := range late {
		js.Publish(t, m)
	}
	want := "1 interval(s): critical from -30s to 0s"
	testenv.Eventually(t, time.Minute, func() error {
		if n, err := gaps(); err != nil || n != 0 {
			return fmt.Errorf("%d missing_reports intervals (%v) after the late reports, want none", n, err)
		}
		got, err := lossInterval(context.Background(), pool, conn, last)
		if err != nil {
			return err
		}
		if got != want {
			return fmt.Errorf("loss: got %s, want %s", got, want)
		}
		return nil
	})
}

// A periodic run analyzes from the earliest report stored since the last successful run up
// to now (later when a report is stamped ahead of the clock), and skips when none was.
func TestPendingPeriod(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	at := func(d time.Duration) time.Time { return now.Add(d) }
	type taken struct {
		from, to time.Time
		ok       bool
	}
	tests := []struct {
		name         string
		takes        []taken
		ok           bool
		since, until time.Time
	}{
		{"nothing stored", []taken{{ok: false}}, false, time.Time{}, time.Time{}},
		{"live reports", []taken{{at(-30 * time.Second), at(-time.Second), true}}, true, at(-30 * time.Second), now},
		{"a late report reaches back", []taken{{at(-90 * time.Second), at(-time.Second), true}}, true, at(-90 * time.Second), now},
		{"a backlog an hour old", []taken{{at(-time.Hour), at(-59 * time.Minute), true}}, true, at(-time.Hour), now},
		{"stamped ahead of this clock", []taken{{at(-10 * time.Second), at(5 * time.Second), true}}, true, at(-10 * time.Second), at(5 * time.Second)},
		{"kept over a failed run and widened", []taken{
			{at(-2 * time.Minute), at(-90 * time.Second), true}, {ok: false}, {at(-20 * time.Second), at(-time.Second), true},
		}, true, at(-2 * time.Minute), now},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var p pending
			for _, tk := range tt.takes {
				p.widen(tk.from, tk.to, tk.ok)
			}
			since, until, ok := p.period(now)
			if ok != tt.ok || !since.Equal(tt.since) || !until.Equal(tt.until) {
				t.Errorf("period: %s to %s, %v; want %s to %s, %v", since, until, ok, tt.since, tt.until, tt.ok)
			}
		})
	}
}

// analyzeSummaryLine finds the analyze subcommand's summary line in its output.
var analyzeSummaryLine = regexp.MustCompile(`(?m)^analyze: .* in all$`)

func TestAnalyzeCommandRecomputesAPeriod(t *testing.T) {
	js := writertest.NewJetStream(t)
	db := writertest.Database(t)
	env := map[string]string{"KOHAKU_NATS_URL": js.Server.URL(), "KOHAKU_DATABASE_URL": db}
	last := time.Now().Add(-5 * time.Minute).Truncate(time.Millisecond)
	const conn = "C0000000000000000000000002"
	msgs := lossyCall(t, conn, last, 8)
	for _, m := range msgs {
		js.Publish(t, m)
	}
	// A writer without the periodic analysis stores the reports and finds nothing.
	w := startWriter(t, map[string]string{"KOHAKU_NATS_URL": js.Server.URL(), "KOHAKU_DATABASE_URL": db, "KOHAKU_ANALYZE_EVERY": "0"})
	pool := writertest.Pool(t, db)
	writertest.WaitCounts(t, pool, writertest.Expect(t, msgs), 60*time.Second)
	w.Signal(syscall.SIGTERM)
	w.wait(t, 30*time.Second)
	ctx := context.Background()
	if got, err := lossInterval(ctx, pool, conn, last); !errors.Is(err, pgx.ErrNoRows) {
		t.Fatalf("before analyze: %s, %v; want no interval", got, err)
	}

	tests := []struct {
		name      string
		threshold string // an UPDATE of kohaku_issue_threshold before the run, if any
		want      string
	}{
		{"analyze finds the loss", "", "1 interval(s): critical from -30s to 0s"},
		{"analyze again changes nothing", "", "1 interval(s): critical from -30s to 0s"},
		{"a higher critical threshold makes it a warning", "UPDATE kohaku_issue_threshold SET value = 25 WHERE kind = 'packet_loss' AND name = 'critical'",
			"1 interval(s): warning from -30s to 0s"},
		{"a higher warning threshold keeps only the worst report", "UPDATE kohaku_issue_threshold SET value = 20 WHERE kind = 'packet_loss' AND name = 'warning'",
			"1 interval(s): warning from -30s to -30s"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.threshold != "" {
				if _, err := pool.Exec(ctx, tt.threshold); err != nil {
					t.Fatal(err)
				}
			}
			p := startWriter(t, env, "analyze", "--since", "10m")
			if code := p.wait(t, 60*time.Second); code != 0 {
				t.Fatalf("analyze exit code %d, want 0\n%s", code, p.Output())
			}
			line := analyzeSummaryLine.FindString(p.Output())
			if !strings.Contains(line, "1 issue intervals (packet_loss 1)") || !strings.Contains(line, "10_issues.sql") {
				t.Errorf("summary %q does not name the analysis file and the one packet_loss interval\n%s", line, p.Output())
			}
			got, err := lossInterval(ctx, pool, conn, last)
			if err != nil || got != tt.want {
				t.Errorf("got %s (%v), want %s", got, err, tt.want)
			}
		})
	}
}
