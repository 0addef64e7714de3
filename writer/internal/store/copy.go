package store

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"kohaku/pkg/normalize"
)

// tableRows are the rows of one table in a batch, one part per message, in the column order
// of normalize.Columns. It is a pgx.CopyFromSource, so the parts are never concatenated.
type tableRows struct {
	parts [][][]any
	n     int // rows in all parts

	part, row int // cursor: the current row is parts[part][row-1]
}

func (r *tableRows) len() int { return r.n }

// rewind readies r for another COPY of the same rows (the merge path, a retry).
func (r *tableRows) rewind() { r.part, r.row = 0, 0 }

// Next implements pgx.CopyFromSource.
func (r *tableRows) Next() bool {
	for r.part < len(r.parts) {
		if r.row < len(r.parts[r.part]) {
			r.row++
			return true
		}
		r.part++
		r.row = 0
	}
	return false
}

// Values implements pgx.CopyFromSource.
func (r *tableRows) Values() ([]any, error) { return r.parts[r.part][r.row-1], nil }

// Err implements pgx.CopyFromSource.
func (r *tableRows) Err() error { return nil }

// copyRows copies rows straight into table: the common case, at full COPY speed. A row
// whose natural key is already present fails the whole COPY with a unique violation.
func copyRows(ctx context.Context, tx pgx.Tx, table string, rows *tableRows) (int64, error) {
	n, err := copyFrom(ctx, tx, table, table, rows)
	if err != nil {
		return 0, fmt.Errorf("copy %d rows into %s: %w", rows.len(), table, err)
	}
	return n, nil
}

// mergeRows copies rows into a temporary table and inserts from there the rows whose natural
// key is not yet present, including only the first of rows that repeat a key among
// themselves (the same message delivered twice in one batch). It returns the rows inserted.
func mergeRows(ctx context.Context, tx pgx.Tx, table string, rows *tableRows) (int64, error) {
	cols := normalize.Columns(table)
	quoted := ""
	for i, c := range cols {
		if i > 0 {
			quoted += ", "
		}
		quoted += pgx.Identifier{c}.Sanitize()
	}
	target := pgx.Identifier{table}.Sanitize()
	tmp := pgx.Identifier{"kohaku_merge_" + table}.Sanitize()
	// Only the copied columns, typed like the target's, without its constraints or
	// defaults: the temporary table must accept duplicates. Each table is merged once per
	// transaction, and the commit drops the temporary table.
	if _, err := tx.Exec(ctx, "CREATE TEMPORARY TABLE "+tmp+" ON COMMIT DROP AS SELECT "+quoted+" FROM "+target+" WITH NO DATA"); err != nil {
		return 0, fmt.Errorf("merge into %s: create temporary table: %w", table, err)
	}
	if _, err := copyFrom(ctx, tx, "kohaku_merge_"+table, table, rows); err != nil {
		return 0, fmt.Errorf("merge into %s: copy %d rows: %w", table, rows.len(), err)
	}
	// Without a conflict target, DO NOTHING skips a row that conflicts on any unique
	// key, also with a row inserted earlier by the same statement.
	tag, err := tx.Exec(ctx, "INSERT INTO "+target+" ("+quoted+") SELECT "+quoted+" FROM "+tmp+" ON CONFLICT DO NOTHING")
	if err != nil {
		return 0, fmt.Errorf("merge into %s: insert: %w", table, err)
	}
	return tag.RowsAffected(), nil
}
