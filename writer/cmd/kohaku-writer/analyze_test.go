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
			js := writertest.NewJetStream(t)
			db := writertest.Database(t)
			p := startWriter(t, map[string]string{
				"KOHAKU_NATS_URL":      js.Server.URL(),
				"KOHAKU_DATABASE_URL":  db,
				"KOHAKU_ANALYZE_EVERY": "5s",
			})
			p.waitReady(t)
			pool := writertest.Pool(t, db)

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
