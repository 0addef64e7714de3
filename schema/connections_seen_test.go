package schema

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"
)

// kohaku_connections_seen finds the connections of a period by the hour of their last_seen
// as well as by the exact times: it must return exactly what the exact times select, at
// the edges of the hours and whatever the session's time zone (Asia/Kolkata is half an
// hour off UTC's hours).
func TestConnectionsSeenIsTheExactPeriod(t *testing.T) {
	ctx := context.Background()
	c := freshConn(t, postgresURL(t))
	mustMigrate(t, c, Options{})
	hour := time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC)
	us := time.Microsecond
	conns := []struct {
		id          string
		first, last time.Time
	}{
		{"ends-before-the-hour", hour.Add(-2 * time.Hour), hour.Add(-us)},
		{"ends-on-the-hour", hour.Add(-time.Hour), hour},
		{"ends-just-after", hour.Add(-time.Minute), hour.Add(us)},
		{"ends-mid-hour", hour.Add(10 * time.Minute), hour.Add(30 * time.Minute)},
		{"ends-late-in-the-hour", hour.Add(35 * time.Minute), hour.Add(45 * time.Minute)},
		{"ends-next-hour", hour.Add(50 * time.Minute), hour.Add(70 * time.Minute)},
		{"starts-late", hour.Add(3 * time.Hour), hour.Add(4 * time.Hour)},
		{"long", hour.Add(-48 * time.Hour), hour.Add(48 * time.Hour)},
	}
	for _, cn := range conns {
		mustExec(t, c, `INSERT INTO sora_connection (connection_id, channel_id, session_id, client_id, role,
			multistream, simulcast, spotlight, label, version, node_name, first_seen, last_seen, feed)
			VALUES ($1, 'ch', 's', 'cl', 'sendrecv', true, false, false, 'l', 'v', 'n', $2, $3, 'exporter')`,
			cn.id, cn.first, cn.last)
	}
	periods := []struct {
		name         string
		since, until time.Time
	}{
		{"from the hour", hour, hour.Add(time.Hour)},
		{"from just after the hour", hour.Add(us), hour.Add(time.Hour)},
		{"from just before the hour", hour.Add(-us), hour.Add(time.Minute)},
		{"mid hour", hour.Add(20 * time.Minute), hour.Add(40 * time.Minute)},
		{"late in the hour", hour.Add(40 * time.Minute), hour.Add(time.Hour)},
		{"the next hour's edge", hour.Add(70 * time.Minute), hour.Add(70 * time.Minute)},
		{"later", hour.Add(5 * time.Hour), hour.Add(6 * time.Hour)},
	}
	for _, zone := range []string{"UTC", "Asia/Kolkata"} {
		mustExec(t, c, "SET TimeZone TO '"+zone+"'")
		for _, p := range periods {
			t.Run(zone+"/"+p.name, func(t *testing.T) {
				got := textColumn(t, c, "SELECT connection_id FROM kohaku_connections_seen($1, $2) ORDER BY 1", p.since, p.until)
				want := textColumn(t, c, `SELECT connection_id FROM sora_connection
					WHERE last_seen >= $1 AND first_seen <= $2 ORDER BY 1`, p.since, p.until)
				if !slices.Equal(got, want) {
					t.Errorf("kohaku_connections_seen = %v, want %v", got, want)
				}
			})
		}
	}
	var hours int
	if err := c.QueryRow(ctx, `SELECT count(*) FROM sora_connection
		WHERE last_seen_hour = date_trunc('hour', last_seen AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'`).Scan(&hours); err != nil {
		t.Fatal(err)
	}
	if hours != len(conns) {
		t.Errorf("%d of %d rows have last_seen_hour at the UTC hour of last_seen", hours, len(conns))
	}
}

// A query through kohaku_connections_seen is planned as a query of sora_connection (the
// function is inlined), so that it uses the last_seen_hour indexes, with a channel too.
func TestConnectionsSeenUsesTheHourIndexes(t *testing.T) {
	c := freshConn(t, postgresURL(t))
	mustMigrate(t, c, Options{})
	mustExec(t, c, "SET enable_seqscan TO off")
	tests := []struct {
		name, query, index string
	}{
		{"period", "SELECT count(*) FROM kohaku_connections_seen(now() - interval '1 hour', now())",
			"sora_connection_last_seen_hour_idx"},
		{"period and channel", "SELECT count(*) FROM kohaku_connections_seen(now() - interval '1 hour', now()) WHERE channel_id = 'ch'",
			"sora_connection_channel_id_hour_idx"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			plan := strings.Join(textColumn(t, c, "EXPLAIN "+tt.query), "\n")
			if strings.Contains(plan, "Function Scan") || !strings.Contains(plan, tt.index) {
				t.Errorf("plan does not use %s on sora_connection:\n%s", tt.index, plan)
			}
		})
	}
}

// A report that moves last_seen within its hour updates the connection's row in place (a
// HOT update, which adds no index entry); one that moves it into the next hour changes
// last_seen_hour, which the indexes key on, and cannot.
func TestConnectionUpdatesWithinTheHourAreHOT(t *testing.T) {
	ctx := context.Background()
	c := freshConn(t, postgresURL(t))
	mustMigrate(t, c, Options{})
	start := time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC)
	mustExec(t, c, `INSERT INTO sora_connection (connection_id, channel_id, session_id, client_id, role,
		multistream, simulcast, spotlight, label, version, node_name, first_seen, last_seen, feed)
		VALUES ('c', 'ch', 's', 'cl', 'sendrecv', true, false, false, 'l', 'v', 'n', $1, $1, 'exporter')`, start)
	const inHour = 20
	for i := 1; i <= inHour; i++ { // each in its own transaction, as the writer's batches
		mustExec(t, c, "UPDATE sora_connection SET last_seen = $1 WHERE connection_id = 'c'", start.Add(time.Duration(i)*time.Minute))
	}
	mustExec(t, c, "UPDATE sora_connection SET last_seen = $1 WHERE connection_id = 'c'", start.Add(time.Hour))
	mustExec(t, c, "SELECT pg_stat_force_next_flush()")
	// A new transaction, so that the statistics read are those after the flush.
	var updates, hot int64
	if err := c.QueryRow(ctx, `SELECT n_tup_upd, n_tup_hot_upd FROM pg_stat_user_tables
		WHERE relid = 'sora_connection'::regclass`).Scan(&updates, &hot); err != nil {
		t.Fatal(err)
	}
	if updates != inHour+1 || hot != inHour {
		t.Errorf("updates %d, in place %d; want %d and %d", updates, hot, inHour+1, inHour)
	}
}

// A database whose connections were stored before migration 8 keeps them: each gets its
// last_seen_hour, the indexes on last_seen give way to those on the hour, and the table
// keeps half of each page for updates.
func TestConnectionHourMigrationUpgradesStoredConnections(t *testing.T) {
	ctx := context.Background()
	c := freshConn(t, postgresURL(t))
	ms := allMigrations(t)
	if len(ms) < 8 || ms[7].Name != "connection_hot_updates" {
		t.Fatalf("migration 8 is %v, want connection_hot_updates", ms[7:])
	}
	if _, err := migrateLocked(ctx, c, ms[:7], Options{}.withDefaults()); err != nil {
		t.Fatalf("migrate to version 7: %v", err)
	}
	mustExec(t, c, `INSERT INTO sora_connection (connection_id, channel_id, session_id, client_id, role,
		multistream, simulcast, spotlight, label, version, node_name, first_seen, last_seen, feed) VALUES
		('old', 'ch', 's', 'cl', 'sendrecv', true, false, false, 'l', 'v', 'n', '2026-12-04 09:00:00+00', '2026-12-04 09:59:59.999999+00', 'exporter'),
		('new', 'ch', 's', 'cl', 'sendrecv', true, false, false, 'l', 'v', 'n', '2026-12-04 09:30:00+00', '2026-12-04 10:00:00+00', 'exporter')`)

	mustMigrate(t, c, Options{})

	got := textColumn(t, c, "SELECT connection_id || ' ' || to_char(last_seen_hour AT TIME ZONE 'UTC', 'HH24:MI') FROM sora_connection ORDER BY 1")
	if want := []string{"new 10:00", "old 09:00"}; !slices.Equal(got, want) {
		t.Errorf("connections and hours %v, want %v", got, want)
	}
	indexes := textColumn(t, c, `SELECT indexname FROM pg_indexes WHERE tablename = 'sora_connection'
		AND schemaname = current_schema() AND indexdef LIKE '%last_seen%' ORDER BY 1`)
	if want := []string{"sora_connection_channel_id_hour_idx", "sora_connection_last_seen_hour_idx"}; !slices.Equal(indexes, want) {
		t.Errorf("indexes on last_seen %v, want %v", indexes, want)
	}
	options := textColumn(t, c, "SELECT unnest(reloptions) FROM pg_class WHERE oid = 'sora_connection'::regclass")
	if want := []string{"fillfactor=50"}; !slices.Equal(options, want) {
		t.Errorf("sora_connection options %v, want %v", options, want)
	}
}
