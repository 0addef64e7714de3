package store

import (
	"context"
	"errors"
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

// upsertSQL inserts a connection or moves its first and last seen outwards. Only the two
// times move: the other fields describe the connection and do not change during it. The
// WHERE clause leaves the row alone when a replay brings nothing new.
const upsertSQL = `INSERT INTO sora_connection
	(connection_id, channel_id, session_id, client_id, role, multistream, simulcast, spotlight,
	 label, version, node_name, first_seen, last_seen, extra)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
ON CONFLICT (connection_id) DO UPDATE SET
	first_seen = LEAST(sora_connection.first_seen, EXCLUDED.first_seen),
	last_seen = GREATEST(sora_connection.last_seen, EXCLUDED.last_seen)
WHERE EXCLUDED.first_seen < sora_connection.first_seen OR EXCLUDED.last_seen > sora_connection.last_seen
RETURNING xmax = 0`

// upsertConnections upserts conns, in their order, in one round trip. It returns how many
// connections were new.
func upsertConnections(ctx context.Context, tx pgx.Tx, conns []connection) (int, error) {
	if len(conns) == 0 {
		return 0, nil
	}
	var b pgx.Batch
	for _, c := range conns {
		extra := c.Extra
		if extra == nil {
			extra = []byte("{}")
		}
		b.Queue(upsertSQL, c.ConnectionID, c.ChannelID, c.SessionID, c.ClientID, c.Role,
			c.Multistream, c.Simulcast, c.Spotlight, c.Label, c.Version, c.NodeName,
			c.first, c.last, extra)
	}
	br := tx.SendBatch(ctx, &b)
	n := 0
	for _, c := range conns {
		// xmax is 0 in a row version that an insert made, not an update: the usual way
		// to tell the two apart after ON CONFLICT DO UPDATE.
		var inserted bool
		err := br.QueryRow().Scan(&inserted)
		switch {
		case errors.Is(err, pgx.ErrNoRows):
			// Already known with these times: nothing changed.
		case err != nil:
			br.Close()
			return 0, fmt.Errorf("upsert sora_connection %s: %w", c.ConnectionID, err)
		case inserted:
			n++
		}
	}
	if err := br.Close(); err != nil {
		return 0, fmt.Errorf("upsert sora_connection: %w", err)
	}
	return n, nil
}
