package deploytest

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"kohaku/pkg/normalize"
	"kohaku/pkg/stream"
	"kohaku/testsupport/proc"
	"kohaku/testsupport/testenv"
)

// drained waits until the writer has acknowledged every message of the stream: from then
// on the database holds all it will.
func drained(t *testing.T, writer *proc.Process, natsURL string, timeout time.Duration) {
	t.Helper()
	nc, err := nats.Connect(natsURL)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, timeout, func() error {
		if writer.Exited() {
			t.Fatalf("kohaku-writer ended: %v\n%s", writer.Err(), writer.Output())
		}
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
		defer cancel()
		s, err := js.Stream(ctx, stream.Name)
		if err != nil {
			return fmt.Errorf("stream: %w", err)
		}
		c, err := s.Consumer(ctx, stream.Consumer)
		if err != nil {
			return fmt.Errorf("consumer: %w", err)
		}
		ci, si := c.CachedInfo(), s.CachedInfo()
		if ci.NumPending > 0 || ci.NumAckPending > 0 || ci.AckFloor.Stream < si.State.LastSeq {
			return fmt.Errorf("writer behind: %d messages not delivered, %d not acknowledged, acknowledged up to %d of %d",
				ci.NumPending, ci.NumAckPending, ci.AckFloor.Stream, si.State.LastSeq)
		}
		return nil
	})
}

// statsTable returns the table that stores stats elements of type typ (DESIGN.md section 4):
// rtc_<type>_stats, local and remote candidates together, any other type in rtc_other_stats.
func statsTable(typ string) string {
	switch typ {
	case "local-candidate", "remote-candidate":
		return "rtc_ice_candidate_stats"
	}
	name := "rtc_" + strings.ReplaceAll(typ, "-", "_") + "_stats"
	if slices.Contains(normalize.StatsTables(), name) {
		return name
	}
	return normalize.TableOther
}

// checkRows compares the database with the reports in the stream, counted from their JSON
// rather than through the writer's code: each table must hold exactly one row per stats
// element sent for it (none lost, none twice) and sora_connection one row per connection;
// nothing may be dead-lettered.
func checkRows(t *testing.T, dbURL string, reports []result) {
	t.Helper()
	want := map[string]int{}
	connections := map[string]bool{}
	for _, r := range reports {
		var env struct {
			ConnectionID string `json:"connection_id"`
			Stats        []struct {
				Type string `json:"type"`
			} `json:"stats"`
		}
		if err := json.Unmarshal(r.body, &env); err != nil {
			t.Fatalf("%s: %v", r.id, err)
		}
		connections[env.ConnectionID] = true
		for _, s := range env.Stats {
			want[statsTable(s.Type)]++
		}
	}
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())

	var elements, rows int
	for _, table := range normalize.StatsTables() {
		if table == normalize.TableErlangVM {
			continue // neither feed sends node reports here
		}
		var n, distinct int
		q := fmt.Sprintf("SELECT count(*), count(DISTINCT (connection_id, stats_id, time)) FROM %s", pgx.Identifier{table}.Sanitize())
		if err := conn.QueryRow(ctx, q).Scan(&n, &distinct); err != nil {
			t.Fatalf("count %s: %v", table, err)
		}
		if n != want[table] || distinct != n {
			t.Errorf("%s holds %d rows (%d distinct keys), want one per element sent: %d", table, n, distinct, want[table])
		}
		elements, rows = elements+want[table], rows+n
	}
	var conns, deadLetters int
	if err := conn.QueryRow(ctx, `SELECT (SELECT count(*) FROM sora_connection), (SELECT count(*) FROM kohaku_dead_letter)`).
		Scan(&conns, &deadLetters); err != nil {
		t.Fatal(err)
	}
	if conns != len(connections) {
		t.Errorf("sora_connection holds %d rows, want %d: one per connection", conns, len(connections))
	}
	if deadLetters != 0 {
		t.Errorf("kohaku_dead_letter holds %d messages, want none", deadLetters)
	}
	t.Logf("database: %d rows for the %d stats elements of %d reports in the stream, %d connections", rows, elements, len(reports), conns)
}
