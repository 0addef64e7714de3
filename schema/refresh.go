package schema

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// RefreshAggregates materializes again, in Kohaku's continuous aggregates, every minute that
// holds rows whose time is in [from, to]; the minutes are widened to whole buckets. A zero
// from means since the oldest row, a zero to means up to the newest.
//
// The writer calls it after a replay: the refresh policy looks back only one day, and
// real-time aggregation reads raw rows only for the minutes not materialized yet, so rows
// written again into older minutes reach the views only through this refresh. from and to
// are row times (the messages' timestamps), not arrival times in the stream.
//
// Without TimescaleDB it does nothing and returns nil: the plain views read the rows on
// every query. conn must not be inside a transaction, which TimescaleDB's refresh refuses.
func RefreshAggregates(ctx context.Context, conn *pgx.Conn, from, to time.Time) error {
	if !from.IsZero() && !to.IsZero() && to.Before(from) {
		return fmt.Errorf("schema: refresh aggregates: to %s is before from %s", to.Format(time.RFC3339), from.Format(time.RFC3339))
	}
	ext, err := timescaleSchema(ctx, conn)
	if err != nil || ext == "" {
		return err
	}
	start, end := refreshWindow(from, to)
	for _, name := range aggregateNames() {
		r, err := readRelation(ctx, conn, name, true)
		if err != nil {
			return fmt.Errorf("schema: refresh aggregates: %w", err)
		}
		if !r.cagg {
			// Not migrated yet with TimescaleDB: nothing is materialized.
			continue
		}
		if _, err := conn.Exec(ctx, "CALL "+ext+".refresh_continuous_aggregate($1::regclass, $2::timestamptz, $3::timestamptz)", name, start, end); err != nil {
			return fmt.Errorf("schema: refresh %s from %v to %v: %w", name, start, end, err)
		}
	}
	return nil
}

// RefreshAggregatesPool runs [RefreshAggregates] on one connection acquired from pool.
func RefreshAggregatesPool(ctx context.Context, pool *pgxpool.Pool, from, to time.Time) error {
	c, err := pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("schema: acquire connection: %w", err)
	}
	defer c.Release()
	return RefreshAggregates(ctx, c.Conn(), from, to)
}

// refreshWindow widens [from, to] to whole minute buckets, [start, end), since TimescaleDB
// refuses a window that covers no whole bucket. A zero time becomes nil, which
// refresh_continuous_aggregate reads as unbounded.
func refreshWindow(from, to time.Time) (start, end *time.Time) {
	if !from.IsZero() {
		s := from.Truncate(time.Minute) // minute buckets start on whole UTC minutes
		start = &s
	}
	if !to.IsZero() {
		e := to.Truncate(time.Minute).Add(time.Minute) // to itself lies in the bucket before e
		end = &e
	}
	return start, end
}

// timescaleSchema returns the schema (quoted as regnamespace quotes it) of the timescaledb functions, or "" when the
// extension is not installed.
func timescaleSchema(ctx context.Context, conn *pgx.Conn) (string, error) {
	var ext string
	err := conn.QueryRow(ctx, "SELECT extnamespace::regnamespace::text FROM pg_extension WHERE extname = 'timescaledb'").Scan(&ext)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("schema: find timescaledb's schema: %w", err)
	}
	return ext, nil
}
