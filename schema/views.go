package schema

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"regexp"
	"sort"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// viewFiles holds the public views, one CREATE VIEW with its comments per file, named after
// the view. They are not numbered migrations: Migrate creates them anew whenever their text
// changes or the minute layer under them was replaced (see aggregates.go).
//
//go:embed views/*.sql
var viewFiles embed.FS

// publicView is one view of the public layer.
type publicView struct {
	name string // the view, also the file name without .sql
	sql  string
}

// publicViews returns the embedded public views in name order.
func publicViews() ([]publicView, error) {
	names, err := fs.Glob(viewFiles, "views/*.sql")
	if err != nil {
		return nil, fmt.Errorf("schema: list views: %w", err)
	}
	sort.Strings(names)
	out := make([]publicView, 0, len(names))
	for _, n := range names {
		b, err := viewFiles.ReadFile(n)
		if err != nil {
			return nil, fmt.Errorf("schema: read %s: %w", n, err)
		}
		out = append(out, publicView{name: strings.TrimSuffix(path.Base(n), ".sql"), sql: string(b)})
	}
	return out, nil
}

// querier is what the catalog helpers need of a *pgx.Conn or a pgx.Tx.
type querier interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// fingerprintMark ends the comment of every view that Migrate manages: the fingerprint of
// the definition that created it. Kept in the object itself, it cannot disagree with what
// is in the database: a view dropped or replaced by hand simply no longer matches.
var fingerprintMark = regexp.MustCompile(` \[kohaku definition ([0-9a-f]{16})\]$`)

// relation is what the catalog says about a relation of the current schema.
type relation struct {
	exists      bool
	relkind     string // pg_class.relkind: "v" for views and continuous aggregates
	cagg        bool   // a TimescaleDB continuous aggregate
	fingerprint string // from the comment, "" when it has none
}

// readRelation looks up name in the current schema. ts tells whether TimescaleDB is
// installed, so that continuous aggregates can be told from plain views.
func readRelation(ctx context.Context, q querier, name string, ts bool) (relation, error) {
	var r relation
	var comment string
	err := q.QueryRow(ctx, `SELECT c.relkind::text, coalesce(obj_description(c.oid, 'pg_class'), '')
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = current_schema() AND c.relname = $1`, name).Scan(&r.relkind, &comment)
	if errors.Is(err, pgx.ErrNoRows) {
		return r, nil
	}
	if err != nil {
		return r, fmt.Errorf("look up %s: %w", name, err)
	}
	r.exists = true
	if m := fingerprintMark.FindStringSubmatch(comment); m != nil {
		r.fingerprint = m[1]
	}
	if ts {
		err := q.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM timescaledb_information.continuous_aggregates
WHERE view_schema = current_schema() AND view_name = $1)`, name).Scan(&r.cagg)
		if err != nil {
			return r, fmt.Errorf("look up continuous aggregate %s: %w", name, err)
		}
	}
	return r, nil
}

// dropRelation drops what readRelation found, without CASCADE: a view of the operator's that
// depends on it makes the drop fail with PostgreSQL's message naming it, rather than
// disappear.
func dropRelation(ctx context.Context, q querier, name string, r relation) error {
	var sql string
	switch {
	case !r.exists:
		return nil
	case r.cagg:
		sql = "DROP MATERIALIZED VIEW " + pgx.Identifier{name}.Sanitize()
	case r.relkind == "v":
		sql = "DROP VIEW " + pgx.Identifier{name}.Sanitize()
	default:
		return fmt.Errorf("%s exists and is not a view (relkind %q): rename or drop it", name, r.relkind)
	}
	if _, err := q.Exec(ctx, sql); err != nil {
		return fmt.Errorf("drop %s: %w", name, err)
	}
	return nil
}

// setComment sets the comment of the view (or continuous aggregate) name to doc, followed
// by the fingerprint mark when fp is set.
func setComment(ctx context.Context, q querier, name, doc, fp string) error {
	if fp != "" {
		doc += " [kohaku definition " + fp + "]"
	}
	// COMMENT takes no bind parameters; format() quotes both.
	var stmt string
	if err := q.QueryRow(ctx, "SELECT format('COMMENT ON VIEW %I IS %L', $1::text, $2::text)", name, doc).Scan(&stmt); err != nil {
		return fmt.Errorf("comment on %s: %w", name, err)
	}
	if _, err := q.Exec(ctx, stmt); err != nil {
		return fmt.Errorf("comment on %s: %w", name, err)
	}
	return nil
}

// configureAggregates brings both layers of the per-minute RTP views to the definitions of
// this binary, after the numbered migrations and the hypertables: the minute layer as
// continuous aggregates with their policies when ext (the quoted schema of the timescaledb
// functions) is set, as plain views when it is "", and the public views on top. It returns
// the continuous aggregates, in creation order; none without TimescaleDB.
//
// The order makes every run converge, whichever step a previous one stopped at: when a
// minute-layer object is missing, of the wrong kind or of another definition, the public
// views (which depend on it) are dropped first, then each such object is created anew; the
// policies are then checked on every run, as for the hypertables; last, every public view
// that is missing or of another definition is created. A new continuous aggregate is
// refreshed over the whole history before its fingerprint is written, so a run that stops
// in between creates it again rather than leaving old minutes unmaterialized.
func configureAggregates(ctx context.Context, conn *pgx.Conn, ext string, opts Options) ([]string, error) {
	views, err := publicViews()
	if err != nil {
		return nil, err
	}
	ts := ext != ""
	var stale []minuteAggregate
	for _, a := range minuteAggregates {
		r, err := readRelation(ctx, conn, a.name, ts)
		if err != nil {
			return nil, fmt.Errorf("schema: %w", err)
		}
		if !r.exists || r.relkind != "v" || r.cagg != ts || r.fingerprint != a.definition(ext) {
			stale = append(stale, a)
		}
	}
	if len(stale) > 0 {
		err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			for _, v := range views {
				r, err := readRelation(ctx, tx, v.name, ts)
				if err != nil {
					return err
				}
				if err := dropRelation(ctx, tx, v.name, r); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("schema: drop the views on the minute aggregates: %w", err)
		}
		for _, a := range stale {
			if err := createAggregate(ctx, conn, ext, a, opts); err != nil {
				return nil, fmt.Errorf("schema: minute aggregate %s: %w", a.name, err)
			}
		}
	}
	var caggs []string
	if ts {
		for _, a := range minuteAggregates {
			err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
				return configureAggregatePolicies(ctx, tx, ext, a.name, opts)
			})
			if err != nil {
				return caggs, fmt.Errorf("schema: policies of %s: %w", a.name, err)
			}
			caggs = append(caggs, a.name)
		}
	}
	for _, v := range views {
		if err := ensureView(ctx, conn, v, opts); err != nil {
			return caggs, fmt.Errorf("schema: view %s: %w", v.name, err)
		}
	}
	return caggs, nil
}

// createAggregate drops a's object if it exists and creates it as configureAggregates says.
func createAggregate(ctx context.Context, conn *pgx.Conn, ext string, a minuteAggregate, opts Options) error {
	ts := ext != ""
	fp := a.definition(ext)
	err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		r, err := readRelation(ctx, tx, a.name, ts)
		if err != nil {
			return err
		}
		if err := dropRelation(ctx, tx, a.name, r); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, a.createSQL(ext)); err != nil {
			return fmt.Errorf("create: %w", err)
		}
		for _, d := range a.columnDocs() {
			var stmt string
			if err := tx.QueryRow(ctx, "SELECT format('COMMENT ON COLUMN %I.%I IS %L', $1::text, $2::text, $3::text)", a.name, d[0], d[1]).Scan(&stmt); err != nil {
				return fmt.Errorf("comment on column %s: %w", d[0], err)
			}
			if _, err := tx.Exec(ctx, stmt); err != nil {
				return fmt.Errorf("comment on column %s: %w", d[0], err)
			}
		}
		if ts {
			// The fingerprint follows the refresh below.
			return setComment(ctx, tx, a.name, a.doc, "")
		}
		return setComment(ctx, tx, a.name, a.doc, fp)
	})
	if err != nil {
		return err
	}
	if !ts {
		opts.Logger.Info("minute aggregate created as a plain view", "view", a.name)
		return nil
	}
	// The refresh policy only looks back aggregateRefreshStart, and real-time aggregation
	// only reads raw rows above what was materialized: the rows already stored must be
	// materialized once, now. It cannot run inside a transaction.
	if _, err := conn.Exec(ctx, "CALL "+ext+".refresh_continuous_aggregate($1::regclass, NULL, NULL)", a.name); err != nil {
		return fmt.Errorf("refresh the whole history: %w", err)
	}
	if err := setComment(ctx, conn, a.name, a.doc, fp); err != nil {
		return err
	}
	opts.Logger.Info("minute aggregate created as a continuous aggregate and refreshed", "view", a.name)
	return nil
}

// configureAggregatePolicies gives the continuous aggregate name its refresh policy and the
// retention of the stats tables (opts.RetainFor), so that the minutes are kept as long as
// the rows they come from. Like the hypertable policies, a policy that matches is kept, with
// its job id and history, and one that differs is replaced.
func configureAggregatePolicies(ctx context.Context, tx pgx.Tx, ext, name string, opts Options) error {
	log := opts.Logger.With("view", name)
	var same bool
	err := tx.QueryRow(ctx, `SELECT count(*) = 1 AND coalesce(bool_and(
	(config->>'start_offset')::interval = $2::interval
	AND (config->>'end_offset')::interval = $3::interval
	AND schedule_interval = $4::interval), false)
FROM timescaledb_information.jobs
WHERE hypertable_schema = current_schema() AND hypertable_name = $1 AND proc_name = 'policy_refresh_continuous_aggregate'`,
		name, interval(aggregateRefreshStart), interval(aggregateRefreshEnd), interval(aggregateRefreshEvery)).Scan(&same)
	if err != nil {
		return fmt.Errorf("read refresh policy: %w", err)
	}
	if !same {
		if _, err := tx.Exec(ctx, "SELECT "+ext+".remove_continuous_aggregate_policy($1::regclass, if_exists => true)", name); err != nil {
			return fmt.Errorf("remove refresh policy: %w", err)
		}
		if _, err := tx.Exec(ctx, "SELECT "+ext+".add_continuous_aggregate_policy($1::regclass, start_offset => $2::interval, end_offset => $3::interval, schedule_interval => $4::interval)",
			name, interval(aggregateRefreshStart), interval(aggregateRefreshEnd), interval(aggregateRefreshEvery)); err != nil {
			return fmt.Errorf("add refresh policy: %w", err)
		}
		log.Info("policy set", "policy", "policy_refresh_continuous_aggregate",
			"start_offset", aggregateRefreshStart, "end_offset", aggregateRefreshEnd, "schedule_interval", aggregateRefreshEvery)
	}
	retain := interval(opts.RetainFor)
	err = tx.QueryRow(ctx, `SELECT count(*) = 1 AND coalesce(bool_and((config->>'drop_after')::interval = $2::interval), false)
FROM timescaledb_information.jobs
WHERE hypertable_schema = current_schema() AND hypertable_name = $1 AND proc_name = 'policy_retention'`, name, retain).Scan(&same)
	if err != nil {
		return fmt.Errorf("read retention policy: %w", err)
	}
	if !same {
		if _, err := tx.Exec(ctx, "SELECT "+ext+".remove_retention_policy($1::regclass, if_exists => true)", name); err != nil {
			return fmt.Errorf("remove retention policy: %w", err)
		}
		if _, err := tx.Exec(ctx, "SELECT "+ext+".add_retention_policy($1::regclass, drop_after => $2::interval)", name, retain); err != nil {
			return fmt.Errorf("add retention policy: %w", err)
		}
		log.Info("policy set", "policy", "policy_retention", "drop_after", retain)
	}
	return nil
}

// ensureView creates the public view v unless it exists with v's definition.
func ensureView(ctx context.Context, conn *pgx.Conn, v publicView, opts Options) error {
	fp := fingerprint(v.sql)
	return pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		r, err := readRelation(ctx, tx, v.name, false)
		if err != nil {
			return err
		}
		if r.exists && r.relkind == "v" && r.fingerprint == fp {
			return nil
		}
		if err := dropRelation(ctx, tx, v.name, r); err != nil {
			return err
		}
		// No arguments: the simple protocol runs the file's statements in one call.
		if _, err := tx.Exec(ctx, v.sql); err != nil {
			return fmt.Errorf("create: %w", err)
		}
		var doc string
		if err := tx.QueryRow(ctx, "SELECT coalesce(obj_description(to_regclass($1), 'pg_class'), '')", v.name).Scan(&doc); err != nil {
			return fmt.Errorf("read comment: %w", err)
		}
		if err := setComment(ctx, tx, v.name, doc, fp); err != nil {
			return err
		}
		opts.Logger.Info("view created", "view", v.name)
		return nil
	})
}
