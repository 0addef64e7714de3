package store

import (
	"context"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"kohaku/pkg/normalize"
)

// ordColumn is the column of a merge table that numbers the rows in the batch's order.
const ordColumn = "kohaku_ord"

// merge writes the rows of a transaction whose natural keys may be present already: copied
// into temporary tables, inserted from there when their key is not yet present (only the
// first of rows that repeat a key among themselves), and compared with the stored row when
// it is. Its statements go in few round trips (one for the temporary tables, a COPY per
// table, one for the inserts, one for the comparisons), because a batch that merges is
// often one small redelivered report, where round trips are the whole cost.
type merge struct {
	tables []string // sorted
	rows   map[string]*tableRows
	sql    statements
}

// mergeTable is the temporary table that table's rows are merged from. Each table is
// merged once per transaction, and the commit drops the temporary table.
func mergeTable(table string) string { return "kohaku_merge_" + table }

// columnList returns the quoted columns of table, comma separated.
func columnList(table string) string {
	cols := normalize.Columns(table)
	quoted := make([]string, len(cols))
	for i, c := range cols {
		quoted[i] = pgx.Identifier{c}.Sanitize()
	}
	return strings.Join(quoted, ", ")
}

// create makes the temporary tables, in one statement: only the copied columns, typed like
// the target's, without its constraints or defaults, for they must accept duplicates.
func (m merge) create(ctx context.Context, tx pgx.Tx) error {
	// Merging is an index lookup per row, which a large batch makes look costly enough
	// for PostgreSQL to compile it first (JIT): that takes longer than the lookups.
	sql := []string{"SET LOCAL jit = off"}
	for _, table := range m.tables {
		sql = append(sql, m.sql.of(table).createMerge)
	}
	// Without arguments, Exec takes the simple protocol, which runs them all at once.
	if _, err := tx.Exec(ctx, strings.Join(sql, ";\n")); err != nil {
		return fmt.Errorf("merge: create temporary tables: %w", err)
	}
	return nil
}

// copy copies table's rows into its temporary table.
func (m merge) copy(ctx context.Context, tx pgx.Tx, table string) error {
	rows := m.rows[table]
	if _, err := copyFrom(ctx, tx, m.sql.of(table).copyMerge, rows); err != nil {
		return fmt.Errorf("merge into %s: copy %d rows: %w", table, rows.len(), err)
	}
	return nil
}

// insert inserts from the temporary tables the rows whose natural key is not yet present.
// It returns the rows inserted per table and, per table and in order, the ordinals of the
// conflicts: the rows not inserted whose key holds a row with different content. The
// others not inserted are duplicates.
func (m merge) insert(ctx context.Context, tx pgx.Tx) (map[string]int64, map[string][]int, error) {
	inserted := make(map[string]int64, len(m.tables))
	b := &pgx.Batch{}
	for _, table := range m.tables {
		// Without a conflict target, DO NOTHING skips a row that conflicts on any
		// unique key, also with a row inserted earlier by the same statement: in batch
		// order, the first of a key wins.
		b.Queue(m.sql.of(table).insertMerge).Exec(
			func(tag pgconn.CommandTag) error {
				inserted[table] = tag.RowsAffected()
				return nil
			})
	}
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return nil, nil, fmt.Errorf("merge: insert: %w", err)
	}
	conflicts := map[string][]int{}
	b = &pgx.Batch{}
	for _, table := range m.tables {
		if inserted[table] == int64(m.rows[table].len()) {
			continue // nothing was left out: no conflict to look for
		}
		b.Queue(m.sql.of(table).conflicts).Query(func(rs pgx.Rows) error {
			ords, err := pgx.CollectRows(rs, func(r pgx.CollectableRow) (int, error) {
				var ord int64
				err := r.Scan(&ord)
				return int(ord), err
			})
			if err != nil {
				return fmt.Errorf("merge into %s: compare with the stored rows: %w", table, err)
			}
			conflicts[table] = ords
			return nil
		})
	}
	if b.Len() > 0 {
		if err := tx.SendBatch(ctx, b).Close(); err != nil {
			return nil, nil, fmt.Errorf("merge: %w", err)
		}
	}
	return inserted, conflicts, nil
}

// conflictSQL selects, in order, the ordinals of the rows of table's merge table whose
// natural key holds a row of table that differs from them in some column. Every row of the
// merge table has its key in table after the insert, its own or the row already there, so
// the rest are identical: duplicates. jsonb compares as JSON values (key order, 1.0 and 1).
func conflictSQL(table string) string {
	cols := normalize.Columns(table)
	quoted := make([]string, len(cols))
	for i, c := range cols {
		quoted[i] = pgx.Identifier{c}.Sanitize()
	}
	var on []string
	for _, c := range normalize.NaturalKey(table) {
		q := pgx.Identifier{c}.Sanitize()
		on = append(on, "t."+q+" = m."+q)
	}
	// A LATERAL subquery with LIMIT is not flattened into a join: each row of the merge
	// table looks its key up in the natural key's index, as ON CONFLICT did, and the
	// planner, which knows nothing of the merge table, cannot choose to scan the whole
	// table instead.
	return "SELECT m." + ordColumn + " FROM " + pgx.Identifier{mergeTable(table)}.Sanitize() + " m CROSS JOIN LATERAL (SELECT " +
		strings.Join(prefixed("t.", quoted), ", ") + " FROM " + pgx.Identifier{table}.Sanitize() + " t WHERE " + strings.Join(on, " AND ") +
		" LIMIT 1) s WHERE (" + strings.Join(prefixed("s.", quoted), ", ") + ") IS DISTINCT FROM (" + strings.Join(prefixed("m.", quoted), ", ") + ")" +
		" ORDER BY m." + ordColumn
}

// prefixed returns each of names with prefix before it.
func prefixed(prefix string, names []string) []string {
	out := make([]string, len(names))
	for k, n := range names {
		out[k] = prefix + n
	}
	return out
}
