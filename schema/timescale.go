package schema

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// notHypertables are the tables with a time column that are not stats: they stay plain
// tables because they are small, updated in place (sora_connection), or must never be
// dropped by retention (the dead letters and the migration record).
var notHypertables = []string{"sora_connection", "kohaku_dead_letter", migrationsTable}

// ensureTimescaleDB creates the timescaledb extension when the server offers it and reports
// whether it is installed. A server that offers it but cannot create it (for example, not in
// shared_preload_libraries) is an error, not a silent fallback to plain tables.
func ensureTimescaleDB(ctx context.Context, conn *pgx.Conn) (bool, error) {
	var installed, available bool
	err := conn.QueryRow(ctx, `SELECT
	EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'timescaledb'),
	EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb')`).Scan(&installed, &available)
	if err != nil {
		return false, fmt.Errorf("schema: look for timescaledb: %w", err)
	}
	if installed {
		return true, nil
	}
	if !available {
		return false, nil
	}
	if _, err := conn.Exec(ctx, "CREATE EXTENSION IF NOT EXISTS timescaledb"); err != nil {
		return false, fmt.Errorf("schema: create extension timescaledb (the server offers it; is it in shared_preload_libraries?): %w", err)
	}
	return true, nil
}

// statsTable is a table to make a hypertable.
type statsTable struct {
	schema, name string
	segmentBy    string // column to segment compressed data by, "" for none
}

func (t statsTable) ident() string { return pgx.Identifier{t.schema, t.name}.Sanitize() }

// statsTables finds the stats tables from the catalog: the ordinary tables of the current
// schema with a timestamptz column "time", except notHypertables. Compressed data is
// segmented by connection_id, or by node_name for tables without it (the Erlang VM table),
// because dashboards select one connection or node over a time range.
func statsTables(ctx context.Context, conn *pgx.Conn) ([]statsTable, error) {
	rows, err := conn.Query(ctx, `SELECT n.nspname, c.relname,
	CASE
		WHEN EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = c.oid AND attname = 'connection_id' AND NOT attisdropped) THEN 'connection_id'
		WHEN EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = c.oid AND attname = 'node_name' AND NOT attisdropped) THEN 'node_name'
		ELSE ''
	END
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'time' AND NOT a.attisdropped
WHERE n.nspname = current_schema()
	AND c.relkind = 'r'
	AND a.atttypid = 'timestamptz'::regtype
	AND c.relname <> ALL ($1)
ORDER BY c.relname`, notHypertables)
	if err != nil {
		return nil, fmt.Errorf("schema: find stats tables: %w", err)
	}
	ts, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (statsTable, error) {
		var t statsTable
		err := r.Scan(&t.schema, &t.name, &t.segmentBy)
		return t, err
	})
	if err != nil {
		return nil, fmt.Errorf("schema: find stats tables: %w", err)
	}
	return ts, nil
}

// configureHypertables makes every stats table a hypertable on time with compression and
// the compression and retention policies of opts. It is idempotent: what already matches
// opts is left as it is, so policy jobs keep their ids and history; a changed interval
// replaces the policy. Each table is configured in its own transaction.
func configureHypertables(ctx context.Context, conn *pgx.Conn, opts Options) ([]string, error) {
	var ext string
	if err := conn.QueryRow(ctx, "SELECT extnamespace::regnamespace::text FROM pg_extension WHERE extname = 'timescaledb'").Scan(&ext); err != nil {
		return nil, fmt.Errorf("schema: find timescaledb's schema: %w", err)
	}
	tables, err := statsTables(ctx, conn)
	if err != nil {
		return nil, err
	}
	var done []string
	for _, t := range tables {
		err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			return configureHypertable(ctx, tx, ext, t, opts)
		})
		if err != nil {
			return done, fmt.Errorf("schema: hypertable %s: %w", t.name, err)
		}
		done = append(done, t.name)
	}
	opts.Logger.Info("TimescaleDB hypertables configured", "tables", len(done),
		"chunk_interval", opts.ChunkInterval, "compress_after", opts.CompressAfter, "retain_for", opts.RetainFor)
	return done, nil
}

// configureHypertable does the work of configureHypertables for one table. ext is the
// schema of the timescaledb functions, already quoted.
func configureHypertable(ctx context.Context, tx pgx.Tx, ext string, t statsTable, opts Options) error {
	log := opts.Logger.With("table", t.name)
	chunk := interval(opts.ChunkInterval)
	// by_range is the TimescaleDB 2.13+ interface. migrate_data moves rows written while
	// the database had no TimescaleDB into chunks. The unique keys of the stats tables
	// include time, as a hypertable requires.
	var created bool
	err := tx.QueryRow(ctx, "SELECT created FROM "+ext+".create_hypertable($1::regclass, "+ext+".by_range('time', $2::interval), if_not_exists => true, migrate_data => true)",
		t.ident(), chunk).Scan(&created)
	if err != nil {
		return fmt.Errorf("create hypertable: %w", err)
	}
	if created {
		log.Info("hypertable created", "chunk_interval", opts.ChunkInterval)
	} else {
		var same bool
		err := tx.QueryRow(ctx, `SELECT coalesce(bool_and(time_interval = $3::interval), false)
FROM timescaledb_information.dimensions
WHERE hypertable_schema = $1 AND hypertable_name = $2 AND column_name = 'time'`, t.schema, t.name, chunk).Scan(&same)
		if err != nil {
			return fmt.Errorf("read chunk interval: %w", err)
		}
		if !same {
			// Applies to chunks created from now on; existing chunks keep their range.
			if _, err := tx.Exec(ctx, "SELECT "+ext+".set_chunk_time_interval($1::regclass, $2::interval)", t.ident(), chunk); err != nil {
				return fmt.Errorf("set chunk interval: %w", err)
			}
			log.Info("chunk interval changed", "chunk_interval", opts.ChunkInterval)
		}
	}
	if err := enableCompression(ctx, tx, t); err != nil {
		return err
	}
	policies := []struct {
		proc, key, remove, add string
		value                  string
	}{
		{"policy_compression", "compress_after", "remove_compression_policy", "add_compression_policy", interval(opts.CompressAfter)},
		{"policy_retention", "drop_after", "remove_retention_policy", "add_retention_policy", interval(opts.RetainFor)},
	}
	for _, p := range policies {
		var same bool
		err := tx.QueryRow(ctx, `SELECT count(*) = 1 AND coalesce(bool_and((config->>'`+p.key+`')::interval = $4::interval), false)
FROM timescaledb_information.jobs
WHERE hypertable_schema = $1 AND hypertable_name = $2 AND proc_name = $3`, t.schema, t.name, p.proc, p.value).Scan(&same)
		if err != nil {
			return fmt.Errorf("read %s: %w", p.proc, err)
		}
		if same {
			continue
		}
		if _, err := tx.Exec(ctx, "SELECT "+ext+"."+p.remove+"($1::regclass, if_exists => true)", t.ident()); err != nil {
			return fmt.Errorf("%s: %w", p.remove, err)
		}
		if _, err := tx.Exec(ctx, "SELECT "+ext+"."+p.add+"($1::regclass, "+p.key+" => $2::interval)", t.ident(), p.value); err != nil {
			return fmt.Errorf("%s: %w", p.add, err)
		}
		log.Info("policy set", "policy", p.proc, p.key, p.value)
	}
	return nil
}

// enableCompression turns compression on with segmentby t.segmentBy and orderby time, unless
// it is on with exactly those settings: TimescaleDB before 2.18 refuses to alter the settings
// of a hypertable that has compressed chunks, even to the same values.
func enableCompression(ctx context.Context, tx pgx.Tx, t statsTable) error {
	var enabled bool
	var segmentBy, orderBy string
	err := tx.QueryRow(ctx, `SELECT h.compression_enabled,
	coalesce((SELECT string_agg(s.attname, ',' ORDER BY s.segmentby_column_index)
		FROM timescaledb_information.compression_settings s
		WHERE s.hypertable_schema = h.hypertable_schema AND s.hypertable_name = h.hypertable_name
			AND s.segmentby_column_index IS NOT NULL), ''),
	coalesce((SELECT string_agg(s.attname || CASE WHEN s.orderby_asc THEN '' ELSE ' DESC' END, ',' ORDER BY s.orderby_column_index)
		FROM timescaledb_information.compression_settings s
		WHERE s.hypertable_schema = h.hypertable_schema AND s.hypertable_name = h.hypertable_name
			AND s.orderby_column_index IS NOT NULL), '')
FROM timescaledb_information.hypertables h
WHERE h.hypertable_schema = $1 AND h.hypertable_name = $2`, t.schema, t.name).Scan(&enabled, &segmentBy, &orderBy)
	if err != nil {
		return fmt.Errorf("read compression settings: %w", err)
	}
	if enabled && segmentBy == t.segmentBy && orderBy == "time" {
		return nil
	}
	// Storage parameters take no bind parameters; segmentBy is one of the constant column
	// names of statsTables, or "" for no segmenting.
	sql := fmt.Sprintf("ALTER TABLE %s SET (timescaledb.compress, timescaledb.compress_segmentby = '%s', timescaledb.compress_orderby = 'time')",
		t.ident(), t.segmentBy)
	if _, err := tx.Exec(ctx, sql); err != nil {
		return fmt.Errorf("enable compression: %w", err)
	}
	return nil
}
