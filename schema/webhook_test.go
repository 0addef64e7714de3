package schema

import (
	"context"
	"testing"
)

// A database of the release before the stats webhook (migrations 1 and 2) upgrades: its
// exporter connections keep their data, bundle_id moves from extra to its column, and
// webhook connections without multistream fit.
func TestStatsWebhookMigrationUpgradesExporterConnections(t *testing.T) {
	ctx := context.Background()
	c := freshConn(t, postgresURL(t))
	ms := allMigrations(t)
	if len(ms) < 3 || ms[2].Name != "stats_webhook" {
		t.Fatalf("migration 3 is %v, want stats_webhook", ms[2:])
	}
	if _, err := migrateLocked(ctx, c, ms[:2], Options{}.withDefaults()); err != nil {
		t.Fatalf("migrate to version 2: %v", err)
	}
	mustExec(t, c, `INSERT INTO sora_connection (connection_id, channel_id, session_id, client_id, role,
		multistream, simulcast, spotlight, label, version, node_name, first_seen, last_seen, extra) VALUES
		('c-string', 'ch', 's', 'cl', 'sendrecv', true, false, false, 'l', 'v', 'n', now(), now(), '{"id":"m1","bundle_id":"b-1"}'),
		('c-number', 'ch', 's', 'cl', 'sendrecv', false, false, false, 'l', 'v', 'n', now(), now(), '{"bundle_id":7}')`)

	mustMigrate(t, c, Options{})

	tests := []struct {
		id, bundle, extra, feed string
	}{
		{"c-string", "b-1", `{"id": "m1"}`, "exporter"},
		{"c-number", "", `{"bundle_id": 7}`, "exporter"}, // not a string: stays where it was
	}
	for _, tt := range tests {
		var bundle *string
		var extra, feed string
		err := c.QueryRow(ctx, `SELECT bundle_id, extra::text, feed FROM sora_connection WHERE connection_id = $1`, tt.id).
			Scan(&bundle, &extra, &feed)
		if err != nil {
			t.Fatal(err)
		}
		got := ""
		if bundle != nil {
			got = *bundle
		}
		if got != tt.bundle || extra != tt.extra || feed != tt.feed {
			t.Errorf("%s: bundle_id %q extra %s feed %s, want %q %s %s", tt.id, got, extra, feed, tt.bundle, tt.extra, tt.feed)
		}
	}
	mustExec(t, c, `INSERT INTO sora_connection (connection_id, channel_id, session_id, client_id, role,
		multistream, simulcast, spotlight, label, version, node_name, first_seen, last_seen, group_id, feed) VALUES
		('c-hook', 'ch', 's', 'cl', 'sendrecv', NULL, false, false, 'l', 'v', 'n', now(), now(), 'g', 'webhook')`)
	if _, err := c.Exec(ctx, `UPDATE sora_connection SET feed = 'carrier pigeon' WHERE connection_id = 'c-hook'`); err == nil {
		t.Error("feed accepted a value that is neither exporter nor webhook")
	}
}
