package store

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"kohaku/pkg/normalize"
)

// connection is the sora_connection row of one connection as a batch saw it: the fields of
// its newest message and the earliest and latest message times.
type connection struct {
	normalize.Connection
	first, last time.Time
}

func newConnection(c *normalize.Connection) *connection {
	return &connection{Connection: *c, first: c.Time, last: c.Time}
}

// see takes c, another message of the same connection, into account.
func (x *connection) see(c *normalize.Connection) {
	if c.Time.Before(x.first) {
		x.first = c.Time
	}
	if !c.Time.Before(x.last) {
		x.Connection, x.last = *c, c.Time
	}
}

// upsertSQL inserts connections, given as arrays of their fields, or moves their first and
// last seen outwards. The other fields describe the connection and do not change during
// it, except those that follow last_seen: extra, which holds envelope fields of each
// message (its id), and the feed with the webhook's ids, so that a connection that moved
// from Sora's stats exporter to its webhook says so. Following last_seen makes them the
// newest message's however the messages were batched, and a replay rebuilds the same row.
// The WHERE clause leaves a row alone when a replay brings nothing new. One statement for
// the whole batch: a statement per connection costs the server about as much as the COPY
// of its stats.
const upsertSQL = `INSERT INTO sora_connection
	(connection_id, channel_id, session_id, client_id, role, multistream, simulcast, spotlight,
	 label, version, node_name, first_seen, last_seen, extra, group_id, bundle_id, feed)
SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::boolean[], $7::boolean[],
	$8::boolean[], $9::text[], $10::text[], $11::text[], $12::timestamptz[], $13::timestamptz[], $14::jsonb[],
	$15::text[], $16::text[], $17::text[])
ORDER BY 1
ON CONFLICT (connection_id) DO UPDATE SET
	first_seen = LEAST(sora_connection.first_seen, EXCLUDED.first_seen),
	last_seen = GREATEST(sora_connection.last_seen, EXCLUDED.last_seen),
	extra = CASE WHEN EXCLUDED.last_seen > sora_connection.last_seen THEN EXCLUDED.extra ELSE sora_connection.extra END,
	group_id = CASE WHEN EXCLUDED.last_seen > sora_connection.last_seen THEN EXCLUDED.group_id ELSE sora_connection.group_id END,
	bundle_id = CASE WHEN EXCLUDED.last_seen > sora_connection.last_seen THEN EXCLUDED.bundle_id ELSE sora_connection.bundle_id END,
	feed = CASE WHEN EXCLUDED.last_seen > sora_connection.last_seen THEN EXCLUDED.feed ELSE sora_connection.feed END
WHERE EXCLUDED.first_seen < sora_connection.first_seen OR EXCLUDED.last_seen > sora_connection.last_seen
RETURNING xmax = 0`

// upsertConnections upserts conns, whose ids are distinct (ON CONFLICT cannot touch a row
// twice in one statement), in id order so that two writers lock them in the same order. It
// returns how many connections were new.
func upsertConnections(ctx context.Context, tx pgx.Tx, conns []connection) (int, error) {
	if len(conns) == 0 {
		return 0, nil
	}
	n := len(conns)
	var (
		ids, channels, sessions, clients, roles = make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		labels, versions, nodes, feeds          = make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		multi                                   = make([]*bool, n)
		simul, spot                             = make([]bool, n), make([]bool, n)
		groups, bundles                         = make([]*string, n), make([]*string, n)
		first, last                             = make([]time.Time, n), make([]time.Time, n)
		extras                                  = make([][]byte, n)
	)
	for i, c := range conns {
		ids[i], channels[i], sessions[i], clients[i], roles[i] = c.ConnectionID, c.ChannelID, c.SessionID, c.ClientID, c.Role
		labels[i], versions[i], nodes[i], feeds[i] = c.Label, c.Version, c.NodeName, c.Feed
		multi[i], simul[i], spot[i] = c.Multistream, c.Simulcast, c.Spotlight
		groups[i], bundles[i] = c.GroupID, c.BundleID
		first[i], last[i] = c.first, c.last
		extras[i] = c.Extra
		if extras[i] == nil {
			extras[i] = []byte("{}")
		}
	}
	rows, err := tx.Query(ctx, upsertSQL, ids, channels, sessions, clients, roles, multi, simul, spot,
		labels, versions, nodes, first, last, extras, groups, bundles, feeds)
	if err != nil {
		return 0, fmt.Errorf("upsert %d sora_connection rows: %w", n, err)
	}
	// xmax is 0 in a row version that an insert made, not an update: the usual way to
	// tell the two apart after ON CONFLICT DO UPDATE. Connections already known with
	// these times return no row.
	inserted := 0
	for rows.Next() {
		var fresh bool
		if err := rows.Scan(&fresh); err != nil {
			rows.Close()
			return 0, fmt.Errorf("upsert sora_connection: %w", err)
		}
		if fresh {
			inserted++
		}
	}
	if err := rows.Err(); err != nil {
		return 0, fmt.Errorf("upsert %d sora_connection rows: %w", n, err)
	}
	return inserted, nil
}
