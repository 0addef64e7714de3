package deploytest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"kohaku/pkg/normalize"
	"kohaku/schema"
	"kohaku/testsupport/fixtures"
)

// fixtureSpan is the time range of the fixtures' messages: the envelopes' timestamps,
// which become the rows' times.
type fixtureSpan struct{ first, last time.Time }

// fillFromFixtures migrates the database of conn and stores every fixture as the writer
// would: the stats rows by COPY, the connection upserted with its first and last seen. It
// also stores one dead letter, a fixture cut in half (the writer's poison message: a body
// that cannot be decoded), so that the dead-letter panel has something to show. It returns
// the fixtures' time range.
func fillFromFixtures(t *testing.T, conn *pgx.Conn) fixtureSpan {
	t.Helper()
	ctx := t.Context()
	if _, err := schema.Migrate(ctx, conn, schema.Options{}); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	all, err := fixtures.All()
	if err != nil {
		t.Fatal(err)
	}
	// Both feeds: the dashboards must read webhook reports as they read the exporter's.
	hooks, err := fixtures.Webhooks()
	if err != nil {
		t.Fatal(err)
	}
	all = append(all, hooks...)
	var span fixtureSpan
	for _, f := range all {
		rows, err := normalize.Message(f.ExporterType, f.Body)
		if err != nil {
			t.Fatalf("normalize fixture %s: %v", f.Name, err)
		}
		for table, rs := range rows.Tables {
			if _, err := conn.CopyFrom(ctx, pgx.Identifier{table}, normalize.Columns(table), pgx.CopyFromRows(rs)); err != nil {
				t.Fatalf("fixture %s: copy into %s: %v", f.Name, table, err)
			}
		}
		if c := rows.Connection; c != nil {
			if err := upsertConnection(ctx, conn, c); err != nil {
				t.Fatalf("fixture %s: %v", f.Name, err)
			}
		}
		at, err := envelopeTime(f.Body)
		if err != nil {
			t.Fatalf("fixture %s: %v", f.Name, err)
		}
		if span.first.IsZero() || at.Before(span.first) {
			span.first = at
		}
		if at.After(span.last) {
			span.last = at
		}
	}
	if err := storeDeadLetter(ctx, conn, all[0], span.last); err != nil {
		t.Fatal(err)
	}
	// With TimescaleDB the per-minute views read continuous aggregates, which hold only
	// what was materialized; without it this does nothing.
	if err := schema.RefreshAggregates(ctx, conn, time.Time{}, time.Time{}); err != nil {
		t.Fatalf("refresh aggregates: %v", err)
	}
	// The captures are of healthy calls: with the jitter warning at 0, as an operator may
	// set a threshold, every received stream has an issue for the Call quality panels.
	if _, err := conn.Exec(ctx, "UPDATE kohaku_issue_threshold SET value = 0 WHERE kind = 'high_jitter' AND name = 'warning'"); err != nil {
		t.Fatalf("lower a threshold: %v", err)
	}
	if _, err := schema.Analyze(ctx, conn, span.first.Add(-time.Minute), span.last.Add(time.Minute)); err != nil {
		t.Fatalf("analyze: %v", err)
	}
	return span
}

// upsertConnection stores c in sora_connection, moving first and last seen outwards when
// the connection is already there, as the writer does.
func upsertConnection(ctx context.Context, conn *pgx.Conn, c *normalize.Connection) error {
	extra := c.Extra
	if extra == nil {
		extra = []byte("{}")
	}
	_, err := conn.Exec(ctx, `INSERT INTO sora_connection
	(connection_id, channel_id, session_id, client_id, role, multistream, simulcast, spotlight,
	 label, version, node_name, first_seen, last_seen, extra, group_id, bundle_id, feed)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $12, $13, $14, $15, $16)
ON CONFLICT (connection_id) DO UPDATE SET
	first_seen = least(sora_connection.first_seen, excluded.first_seen),
	last_seen = greatest(sora_connection.last_seen, excluded.last_seen)`,
		c.ConnectionID, c.ChannelID, c.SessionID, c.ClientID, c.Role, c.Multistream, c.Simulcast,
		c.Spotlight, c.Label, c.Version, c.NodeName, c.Time, extra, c.GroupID, c.BundleID, c.Feed)
	if err != nil {
		return fmt.Errorf("upsert sora_connection %s: %w", c.ConnectionID, err)
	}
	return nil
}

// storeDeadLetter stores the first half of fixture f as a dead letter at time at, with the
// error that normalizing it gives.
func storeDeadLetter(ctx context.Context, conn *pgx.Conn, f fixtures.Fixture, at time.Time) error {
	body := f.Body[:len(f.Body)/2]
	_, nerr := normalize.Message(f.ExporterType, body)
	if nerr == nil {
		return errors.New("half a fixture was decoded: it is no poison message")
	}
	headers, err := json.Marshal(map[string][]string{"Kohaku-Exporter-Type": {f.ExporterType}})
	if err != nil {
		return err
	}
	if _, err := conn.Exec(ctx, `INSERT INTO kohaku_dead_letter (stream_seq, subject, headers, body, error, time)
VALUES (1, $1, $2, $3, $4, $5)`, "kohaku.stats."+f.ExporterType, headers, body, nerr.Error(), at); err != nil {
		return fmt.Errorf("store dead letter: %w", err)
	}
	return nil
}

// envelopeTime reads the timestamp of a request body's envelope.
func envelopeTime(body []byte) (time.Time, error) {
	var env struct {
		Timestamp time.Time `json:"timestamp"`
	}
	if err := json.Unmarshal(body, &env); err != nil {
		return time.Time{}, fmt.Errorf("read envelope timestamp: %w", err)
	}
	return env.Timestamp, nil
}
