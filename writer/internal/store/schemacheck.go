package store

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"

	"kohaku/pkg/normalize"
)

// SchemaError says that the database lacks tables or columns that Write stores rows in:
// its schema is older than this writer's. Every COPY would fail until the migrations run,
// and such a failure is retried, so a writer must not start on it.
type SchemaError struct {
	// Missing lists, in the order Write uses the tables, each table that lacks columns,
	// with the columns it lacks.
	Missing []MissingColumns
}

// MissingColumns is a table and the columns it lacks; a table that does not exist at all
// lacks every column and has NoTable set.
type MissingColumns struct {
	Table   string
	Columns []string
	NoTable bool
}

func (e *SchemaError) Error() string {
	var parts []string
	for _, m := range e.Missing {
		if m.NoTable {
			parts = append(parts, "table "+m.Table+" does not exist")
			continue
		}
		word := "column"
		if len(m.Columns) > 1 {
			word = "columns"
		}
		parts = append(parts, fmt.Sprintf("table %s lacks the %s %s", m.Table, word, strings.Join(m.Columns, ", ")))
	}
	return "store: the database schema is older than this writer: " + strings.Join(parts, "; ") +
		" (apply the migrations: kohaku-writer migrate, or start with KOHAKU_MIGRATE=true)"
}

// Querier runs a query: a *pgxpool.Pool, a *pgx.Conn or a pgx.Tx.
type Querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// CheckSchema returns a *SchemaError when a table that Write stores rows in, or a column
// it names, is missing from the database of db: the stats tables with normalize.Columns,
// sora_connection and kohaku_dead_letter with the columns of their INSERTs. Tables are
// looked up on the search path, as Write's statements find them. Other errors are those of
// the query (the database may be unreachable).
func CheckSchema(ctx context.Context, db Querier) error {
	want, err := writtenColumns()
	if err != nil {
		return err
	}
	names := make([]string, len(want))
	for k, w := range want {
		names[k] = w.table
	}
	// to_regclass resolves a name on the search path, as COPY and INSERT do; a missing
	// table gives NULL and so one row without a column.
	rows, err := db.Query(ctx, `SELECT t.name, a.attname::text
FROM unnest($1::text[]) AS t(name)
LEFT JOIN pg_attribute a ON a.attrelid = to_regclass(quote_ident(t.name)) AND a.attnum > 0 AND NOT a.attisdropped`, names)
	if err != nil {
		return fmt.Errorf("store: read the columns of the tables: %w", err)
	}
	have := map[string][]string{}
	var table string
	var col *string
	if _, err := pgx.ForEachRow(rows, []any{&table, &col}, func() error {
		if col != nil {
			have[table] = append(have[table], *col)
		} else if _, ok := have[table]; !ok {
			have[table] = nil
		}
		return nil
	}); err != nil {
		return fmt.Errorf("store: read the columns of the tables: %w", err)
	}
	var e SchemaError
	for _, w := range want {
		got := have[w.table]
		if len(got) == 0 {
			e.Missing = append(e.Missing, MissingColumns{Table: w.table, Columns: w.columns, NoTable: true})
			continue
		}
		var lack []string
		for _, c := range w.columns {
			if !slices.Contains(got, c) {
				lack = append(lack, c)
			}
		}
		if len(lack) > 0 {
			e.Missing = append(e.Missing, MissingColumns{Table: w.table, Columns: lack})
		}
	}
	if len(e.Missing) > 0 {
		return &e
	}
	return nil
}

// tableColumns is a table and the columns that Write names in it.
type tableColumns struct {
	table   string
	columns []string
}

// writtenColumns returns every table that Write stores rows in with the columns it names:
// the stats tables as normalize gives them, then the tables of the INSERTs.
func writtenColumns() ([]tableColumns, error) {
	insert := regexp.MustCompile(`^INSERT INTO (\w+)\s*\(([^)]*)\)`)
	var out []tableColumns
	for _, table := range normalize.StatsTables() {
		out = append(out, tableColumns{table, normalize.Columns(table)})
	}
	for _, sql := range []string{upsertSQL, deadLetterSQL} {
		m := insert.FindStringSubmatch(sql)
		if m == nil {
			return nil, fmt.Errorf("store: a statement of the store does not start with INSERT INTO table (columns): %.40q", sql)
		}
		var cols []string
		for _, c := range strings.Split(m[2], ",") {
			cols = append(cols, strings.TrimSpace(c))
		}
		out = append(out, tableColumns{m[1], cols})
	}
	return out, nil
}
