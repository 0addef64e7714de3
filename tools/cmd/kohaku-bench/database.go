package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"kohaku/pkg/normalize"
)

// createDatabase creates a fresh database named kohaku_bench_<random> on the server of
// adminURL and returns its URL and a function that drops it.
func createDatabase(ctx context.Context, adminURL string) (string, func() error, error) {
	var b [4]byte
	rand.Read(b[:])
	name := "kohaku_bench_" + hex.EncodeToString(b[:])
	conn, err := pgx.Connect(ctx, adminURL)
	if err != nil {
		return "", nil, fmt.Errorf("connect to PostgreSQL at %s: %w", redact(adminURL), err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		return "", nil, fmt.Errorf("create database %s: %w", name, err)
	}
	u, err := url.Parse(adminURL)
	if err != nil {
		return "", nil, fmt.Errorf("database URL: %w", err)
	}
	u.Path = "/" + name
	drop := func() error {
		ctx := context.WithoutCancel(ctx)
		conn, err := pgx.Connect(ctx, adminURL)
		if err != nil {
			return fmt.Errorf("drop database %s: %w", name, err)
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
			return fmt.Errorf("drop database %s: %w", name, err)
		}
		return nil
	}
	return u.String(), drop, nil
}

// redact hides a password in a database URL.
func redact(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "(unparsable URL)"
	}
	return u.Redacted()
}

// statsRows returns the number of rows in every table that normalize.Message fills.
func statsRows(ctx context.Context, pool *pgxpool.Pool) (int64, error) {
	var parts []string
	for _, t := range normalize.StatsTables() {
		parts = append(parts, "(SELECT count(*) FROM "+pgx.Identifier{t}.Sanitize()+")")
	}
	var n int64
	if err := pool.QueryRow(ctx, "SELECT "+strings.Join(parts, " + ")).Scan(&n); err != nil {
		return 0, fmt.Errorf("count rows: %w", err)
	}
	return n, nil
}

// truncate empties the stats tables and sora_connection, then checkpoints, so that every
// timed round starts from the same state. A round of the default 50,000 messages writes
// about 0.9 GB of WAL, and PostgreSQL with its default max_wal_size (1 GB) starts a
// checkpoint after about 0.54 GB: starting from a checkpoint puts that one at the same
// place in every round. Without it, rounds flushed the round before's pages and wrote
// whole pages to the WAL at different places, which made rounds of the same rows differ
// by up to a third.
func truncate(ctx context.Context, pool *pgxpool.Pool) error {
	var names []string
	for _, t := range append(normalize.StatsTables(), normalize.TableConnection) {
		names = append(names, pgx.Identifier{t}.Sanitize())
	}
	if _, err := pool.Exec(ctx, "TRUNCATE "+strings.Join(names, ", ")); err != nil {
		return fmt.Errorf("truncate: %w", err)
	}
	if _, err := pool.Exec(ctx, "CHECKPOINT"); err != nil {
		return fmt.Errorf("checkpoint after truncate: %w", err)
	}
	return nil
}
