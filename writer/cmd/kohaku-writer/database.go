package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"kohaku/pkg/retry"
	"kohaku/schema"
	"kohaku/writer/internal/store"
)

// applicationName names the writer's database sessions.
const applicationName = "kohaku-writer"

// openPool returns a pool for url with room for writers connections writing at once and
// one more (the analyzer, readiness checks): its maximum is raised to that when url's
// pool_max_conns, or pgxpool's default, is lower. Its sessions are named kohaku-writer in
// pg_stat_activity unless url sets application_name. It connects lazily, so an
// unreachable database is not an error here.
func openPool(ctx context.Context, url string, writers int) (*pgxpool.Pool, error) {
	pc, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("KOHAKU_DATABASE_URL: %w", err)
	}
	if pc.ConnConfig.ConnectTimeout == 0 {
		// An unreachable server must show as an outage soon, not after the OS gives up.
		pc.ConnConfig.ConnectTimeout = 5 * time.Second
	}
	if _, ok := pc.ConnConfig.RuntimeParams["application_name"]; !ok {
		// So that an operator (or kohaku-bench, which reads their CPU time) tells the
		// writer's backends from the others.
		pc.ConnConfig.RuntimeParams["application_name"] = applicationName
	}
	if need := int32(writers) + 1; pc.MaxConns < need {
		pc.MaxConns = need
	}
	pool, err := pgxpool.NewWithConfig(ctx, pc)
	if err != nil {
		return nil, fmt.Errorf("database pool: %w", err)
	}
	return pool, nil
}

// prepareDatabase creates the database when it does not exist, applies the schema
// migrations and checks with requireSchema that the tables have every column the writer
// stores. With keepTrying it waits, with backoff, while the database cannot be reached.
func prepareDatabase(ctx context.Context, cfg Config, pool *pgxpool.Pool, keepTrying bool, log *slog.Logger) error {
	opts := cfg.Timescale
	opts.Logger = log
	b := retry.Backoff{Min: 250 * time.Millisecond, Max: 5 * time.Second}
	created := false
	for attempt := 1; ; attempt++ {
		res, err := schema.MigratePool(ctx, pool, opts)
		if err == nil {
			log.Info("database schema up to date", "database", pool.Config().ConnConfig.Database,
				"applied", len(res.Applied), "timescaledb", res.TimescaleDB)
			// Migrations that were recorded as applied are not applied again: a column
			// dropped by hand since, or a newer release's migrations recorded by a
			// restored backup's table, would still be missing.
			return requireSchema(ctx, pool, keepTrying, log)
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if missingDatabase(err) && !created {
			if err := createDatabase(ctx, pool.Config().ConnConfig, log); err != nil {
				return err
			}
			created = true
			continue
		}
		if !keepTrying || !store.Transient(err) {
			return fmt.Errorf("migrate the database: %w", err)
		}
		if attempt == 1 {
			log.Warn("database unavailable, retrying", "err", err)
		}
		if err := b.Wait(ctx); err != nil {
			return err
		}
	}
}

// missingDatabase reports whether err says that the database does not exist.
func missingDatabase(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "3D000" // invalid_catalog_name
}

// createDatabase creates the database of cc, connecting to the maintenance database
// "postgres" of the same server.
func createDatabase(ctx context.Context, cc *pgx.ConnConfig, log *slog.Logger) error {
	name := cc.Database
	mc := cc.Copy()
	mc.Database = "postgres"
	conn, err := pgx.ConnectConfig(ctx, mc)
	if err != nil {
		return fmt.Errorf("database %s does not exist, and creating it failed: %w", name, err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && pgErr.Code == "42P04" { // duplicate_database: another writer was first
			return nil
		}
		return fmt.Errorf("database %s does not exist, and creating it failed: %w", name, err)
	}
	log.Info("database created", "database", name)
	return nil
}

// requireSchema returns an error naming the tables and columns that the writer stores
// rows in and the database lacks (a *store.SchemaError): with such a schema every COPY
// would fail, and be retried without end, so the writer must not start. That happens when
// KOHAKU_MIGRATE is off and the database is older than this writer. With keepTrying it
// waits, with backoff, while the database cannot be reached.
func requireSchema(ctx context.Context, pool *pgxpool.Pool, keepTrying bool, log *slog.Logger) error {
	b := retry.Backoff{Min: 250 * time.Millisecond, Max: 5 * time.Second}
	for attempt := 1; ; attempt++ {
		err := store.CheckSchema(ctx, pool)
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		var schemaErr *store.SchemaError
		if errors.As(err, &schemaErr) || !keepTrying || !store.Transient(err) {
			return fmt.Errorf("check the database schema: %w", err)
		}
		if attempt == 1 {
			log.Warn("database unavailable, retrying", "err", err)
		}
		if err := b.Wait(ctx); err != nil {
			return err
		}
	}
}

// runMigrate is the migrate subcommand.
func runMigrate(ctx context.Context, cfg Config, log *slog.Logger) error {
	pool, err := openPool(ctx, cfg.DatabaseURL, 1)
	if err != nil {
		return err
	}
	defer pool.Close()
	return prepareDatabase(ctx, cfg, pool, false, log)
}

// openStore opens the database of cfg for a one-shot command (replay, import), applies the
// migrations first when KOHAKU_MIGRATE is on (such a command may be the first program to
// see the database, or it may be a restored backup that lacks newer migrations), checks
// either way that the tables have every column it stores (requireSchema), and returns a
// store on it with metrics of its own, and the pool, which the caller closes.
func openStore(ctx context.Context, cfg Config, log *slog.Logger) (*store.Store, *pgxpool.Pool, error) {
	pool, err := openPool(ctx, cfg.DatabaseURL, 1)
	if err != nil {
		return nil, nil, err
	}
	if cfg.Migrate {
		err = prepareDatabase(ctx, cfg, pool, false, log)
	} else {
		err = requireSchema(ctx, pool, false, log)
	}
	if err != nil {
		pool.Close()
		return nil, nil, err
	}
	return store.New(pool, log, prometheus.NewRegistry()), pool, nil
}
