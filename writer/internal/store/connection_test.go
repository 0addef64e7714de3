package store_test

import (
	"context"
	"testing"

	"kohaku/pkg/sora"
	"kohaku/testsupport/fixtures"
	"kohaku/writer/internal/writertest"
)

// Webhook reports fill sora_connection's webhook columns; a connection without multistream
// has NULL there, not a guessed false.
func TestWriteWebhookConnections(t *testing.T) {
	f := newFixture(t, 0)
	hooks, err := fixtures.Webhooks()
	if err != nil {
		t.Fatal(err)
	}
	var msgs []writertest.Message
	for _, h := range hooks {
		msgs = append(msgs, writertest.Message{ExporterType: sora.TypeConnectionRTC, Body: h.Body})
	}
	f.write(t, messages(t, msgs))
	if d := writertest.Expect(t, msgs).Diff(f.counts(t)); d != "" {
		t.Fatalf("counts: %s", d)
	}
	tests := []struct {
		client      string
		multistream string
	}{
		{"capture-stats-pc1", "true"},
		{"capture-stats-pc2", "NULL"},
	}
	for _, tt := range tests {
		var multi, group, bundle, feed, extra string
		err := f.pool.QueryRow(context.Background(), `SELECT coalesce(multistream::text, 'NULL'), group_id, bundle_id, feed,
			extra::text FROM sora_connection WHERE client_id = $1`, tt.client).Scan(&multi, &group, &bundle, &feed, &extra)
		if err != nil {
			t.Fatalf("%s: %v", tt.client, err)
		}
		if multi != tt.multistream || group != "kohaku-fixture-group" || bundle == "" || feed != "webhook" {
			t.Errorf("%s: multistream %s group_id %q bundle_id %q feed %q", tt.client, multi, group, bundle, feed)
		}
	}
	// pc2's newest report has a member no Sora sends yet: it is kept in extra.
	var future string
	if err := f.pool.QueryRow(context.Background(), `SELECT extra->'x_kohaku_future_member'->>'note' FROM sora_connection
		WHERE client_id = 'capture-stats-pc2'`).Scan(&future); err != nil || future == "" {
		t.Errorf("unknown top-level member not in extra: %q %v", future, err)
	}
}
