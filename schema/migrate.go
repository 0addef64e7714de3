package schema

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// lockKey is the pg_advisory_lock key that serializes Migrate runs on one database: the
// ASCII bytes of "kohaku".
const lockKey int64 = 0x6b6f68616b75

// migrationsTable records the applied migrations.
const migrationsTable = "kohaku_schema_migrations"

// Result tells what one Migrate run did.
type Result struct {
	// Applied lists the migrations applied by this run, in order; empty when the
	// database was already up to date.
	Applied []Migration
	// TimescaleDB tells whether the TimescaleDB extension is used.
	TimescaleDB bool
	// Hypertables lists the stats tables configured as hypertables by this run, in name
	// order; empty without TimescaleDB.
	Hypertables []string
	// ContinuousAggregates lists the minute layer of the per-minute RTP views, configured
	// as continuous aggregates by this run; empty without TimescaleDB, where that layer is
	// plain views.
	ContinuousAggregates []string
}

// Migrate brings the database of conn to the embedded schema. It holds a session advisory
// lock for the whole run, so concurrent runs from other processes wait and then find nothing
// left to do. It applies each migration not yet recorded in kohaku_schema_migrations in its
// own transaction, which records it too, so a failed migration leaves no trace and the next
// run retries it. With TimescaleDB available it then (re)configures hypertables, compression
// and policies from opts (zero fields take the defaults); without it, it logs a warning that
// the tables are plain PostgreSQL tables. Last, it brings the per-minute RTP views
// (kohaku_inbound_rtp_1m, kohaku_outbound_rtp_1m and the minute layer under them, as
// continuous aggregates with TimescaleDB, else as plain views) to this binary's definitions;
// a continuous aggregate created by the run is refreshed over all the rows already stored,
// which can take a while on a large database. conn must not be inside a transaction. If the
// lock cannot be released, conn is closed, which releases it.
func Migrate(ctx context.Context, conn *pgx.Conn, opts Options) (Result, error) {
	opts = opts.withDefaults()
	if err := opts.Validate(); err != nil {
		return Result{}, err
	}
	ms, err := Migrations()
	if err != nil {
		return Result{}, err
	}
	if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock($1)", lockKey); err != nil {
		return Result{}, fmt.Errorf("schema: take advisory lock: %w", err)
	}
	res, err := migrateLocked(ctx, conn, ms, opts)
	if uerr := unlock(ctx, conn); uerr != nil {
		err = errors.Join(err, uerr)
	}
	return res, err
}

// MigratePool runs [Migrate] on one connection acquired from pool.
func MigratePool(ctx context.Context, pool *pgxpool.Pool, opts Options) (Result, error) {
	c, err := pool.Acquire(ctx)
	if err != nil {
		return Result{}, fmt.Errorf("schema: acquire connection: %w", err)
	}
	// A connection that Migrate had to close is discarded by the pool on release.
	defer c.Release()
	return Migrate(ctx, c.Conn(), opts)
}

// unlock releases the advisory lock even when ctx is already canceled; if that fails the
// connection is closed, since a session lock ends with its session and must not outlive a
// failed run in a pool.
func unlock(ctx context.Context, conn *pgx.Conn) error {
	uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if _, err := conn.Exec(uctx, "SELECT pg_advisory_unlock($1)", lockKey); err != nil {
		conn.Close(uctx)
		return fmt.Errorf("schema: release advisory lock (connection closed): %w", err)
	}
	return nil
}

func migrateLocked(ctx context.Context, conn *pgx.Conn, ms []Migration, opts Options) (Result, error) {
	var res Result
	ts, err := ensureTimescaleDB(ctx, conn)
	if err != nil {
		return res, err
	}
	res.TimescaleDB = ts
	if err := createMigrationsTable(ctx, conn); err != nil {
		return res, err
	}
	applied, err := recorded(ctx, conn)
	if err != nil {
		return res, err
	}
	for _, m := range ms {
		if _, ok := applied[m.Version]; ok {
			continue
		}
		if err := apply(ctx, conn, m); err != nil {
			return res, err
		}
		opts.Logger.Info("schema migration applied", "version", m.Version, "name", m.Name)
		res.Applied = append(res.Applied, m)
	}
	newest := ms[len(ms)-1].Version
	opts.Logger.Info("schema up to date", "version", newest, "applied", len(res.Applied))
	for v, name := range applied {
		if v > newest {
			// A newer writer migrated this database. Its changes are meant to be
			// additive, so this binary goes on, but the operator should know.
			opts.Logger.Warn("database schema is newer than this binary", "version", v, "name", name, "known_version", newest)
		}
	}
	var ext string
	if ts {
		hts, err := configureHypertables(ctx, conn, opts)
		res.Hypertables = hts
		if err != nil {
			return res, err
		}
		if ext, err = timescaleSchema(ctx, conn); err != nil {
			return res, err
		}
	} else {
		opts.Logger.Warn("TimescaleDB is not available: stats tables are plain PostgreSQL tables, nothing is compressed and no retention runs")
	}
	// After the hypertables: a continuous aggregate can only be made on a hypertable.
	caggs, err := configureAggregates(ctx, conn, ext, opts)
	res.ContinuousAggregates = caggs
	return res, err
}

// createMigrationsTable creates kohaku_schema_migrations, where apply records each
// migration.
func createMigrationsTable(ctx context.Context, conn *pgx.Conn) error {
	if _, err := conn.Exec(ctx, `CREATE TABLE IF NOT EXISTS `+migrationsTable+` (
	version    integer     PRIMARY KEY,
	name       text        NOT NULL,
	applied_at timestamptz NOT NULL DEFAULT now()
)`); err != nil {
		return fmt.Errorf("schema: create %s: %w", migrationsTable, err)
	}
	return nil
}

// recorded returns the versions in kohaku_schema_migrations with their names.
func recorded(ctx context.Context, conn *pgx.Conn) (map[int]string, error) {
	rows, err := conn.Query(ctx, "SELECT version, name FROM "+migrationsTable)
	if err != nil {
		return nil, fmt.Errorf("schema: read %s: %w", migrationsTable, err)
	}
	applied := map[int]string{}
	var (
		v    int
		name string
	)
	if _, err := pgx.ForEachRow(rows, []any{&v, &name}, func() error {
		applied[v] = name
		return nil
	}); err != nil {
		return nil, fmt.Errorf("schema: read %s: %w", migrationsTable, err)
	}
	return applied, nil
}

// apply runs m and records it in one transaction.
func apply(ctx context.Context, conn *pgx.Conn, m Migration) error {
	err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		// No arguments: pgx uses the simple protocol, which runs a file of several
		// statements in one call.
		if _, err := tx.Exec(ctx, m.SQL); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, "INSERT INTO "+migrationsTable+" (version, name) VALUES ($1, $2)", m.Version, m.Name)
		return err
	})
	if err != nil {
		return fmt.Errorf("schema: migration %04d_%s: %w", m.Version, m.Name, err)
	}
	return nil
}
