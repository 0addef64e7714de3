package store

import (
	"context"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"

	"kohaku/pkg/normalize"
)

// tableRows are the rows of one table in a batch, one part per message, in the column order
// of normalize.Columns. It is a pgx.CopyFromSource, so the parts are never concatenated.
type tableRows struct {
	parts   [][][]any
	origins [][]normalize.Origin // per part: the element of each row
	msgs    []int                // per part: the index of its message in the batch
	n       int                  // rows in all parts

	part, row int  // cursor: the current row is parts[part][row-1]
	ord       bool // Values appends the row's ordinal in r (see mergeRows)
	at        int  // the ordinal of the current row
}

func (r *tableRows) len() int { return r.n }

// add appends the rows of message msg and their origins.
func (r *tableRows) add(msg int, rows [][]any, origins []normalize.Origin) {
	r.parts = append(r.parts, rows)
	r.origins = append(r.origins, origins)
	r.msgs = append(r.msgs, msg)
	r.n += len(rows)
}

// rewind readies r for another COPY of the same rows (the merge path, a retry).
func (r *tableRows) rewind() { r.part, r.row, r.at = 0, 0, -1 }

// Next implements pgx.CopyFromSource.
func (r *tableRows) Next() bool {
	for r.part < len(r.parts) {
		if r.row < len(r.parts[r.part]) {
			r.row++
			r.at++
			return true
		}
		r.part++
		r.row = 0
	}
	return false
}

// Values implements pgx.CopyFromSource.
func (r *tableRows) Values() ([]any, error) {
	row := r.parts[r.part][r.row-1]
	if r.ord {
		return append(row[:len(row):len(row)], int64(r.at)), nil
	}
	return row, nil
}

// Err implements pgx.CopyFromSource.
func (r *tableRows) Err() error { return nil }

// originsOf returns the message index and the element of each row of r whose ordinal is
// in ords, which are in increasing order.
func (r *tableRows) originsOf(ords []int) ([]int, []normalize.Origin) {
	msgs, origins := make([]int, len(ords)), make([]normalize.Origin, len(ords))
	p, start := 0, 0 // the part that holds ordinal start and up
	for k, ord := range ords {
		for ord >= start+len(r.parts[p]) {
			start += len(r.parts[p])
			p++
		}
		msgs[k], origins[k] = r.msgs[p], r.origins[p][ord-start]
	}
	return msgs, origins
}

// copyRows copies rows straight into table: the common case, at full COPY speed. A row
// whose natural key is already present fails the whole COPY with a unique violation.
func copyRows(ctx context.Context, tx pgx.Tx, table string, rows *tableRows) (int64, error) {
	n, err := copyFrom(ctx, tx, table, table, rows, false)
	if err != nil {
		return 0, fmt.Errorf("copy %d rows into %s: %w", rows.len(), table, err)
	}
	return n, nil
}

// ordColumn is the column of the merge table that numbers the rows in the batch's order.
const ordColumn = "kohaku_ord"

// mergeRows copies rows into a temporary table and inserts from there the rows whose natural
// key is not yet present, including only the first of rows that repeat a key among
// themselves (the same message delivered twice in one batch). It returns the rows inserted
// and, in order, the ordinals in rows of the conflicts: the rows not inserted whose key
// holds a row with different content. The others not inserted are duplicates.
func mergeRows(ctx context.Context, tx pgx.Tx, table string, rows *tableRows) (int64, []int, error) {
	cols := normalize.Columns(table)
	quoted := make([]string, len(cols))
	for i, c := range cols {
		quoted[i] = pgx.Identifier{c}.Sanitize()
	}
	list := strings.Join(quoted, ", ")
	target := pgx.Identifier{table}.Sanitize()
	tmp := pgx.Identifier{"kohaku_merge_" + table}.Sanitize()
	// Only the copied columns, typed like the target's, without its constraints or
	// defaults: the temporary table must accept duplicates. Each table is merged once per
	// transaction, and the commit drops the temporary table.
	if _, err := tx.Exec(ctx, "CREATE TEMPORARY TABLE "+tmp+" ON COMMIT DROP AS SELECT "+list+", 0::bigint AS "+ordColumn+
		" FROM "+target+" WITH NO DATA"); err != nil {
		return 0, nil, fmt.Errorf("merge into %s: create temporary table: %w", table, err)
	}
	if _, err := copyFrom(ctx, tx, "kohaku_merge_"+table, table, rows, true); err != nil {
		return 0, nil, fmt.Errorf("merge into %s: copy %d rows: %w", table, rows.len(), err)
	}
	// Without a conflict target, DO NOTHING skips a row that conflicts on any unique
	// key, also with a row inserted earlier by the same statement: in batch order, the
	// first of a key wins.
	tag, err := tx.Exec(ctx, "INSERT INTO "+target+" ("+list+") SELECT "+list+" FROM "+tmp+" ORDER BY "+ordColumn+" ON CONFLICT DO NOTHING")
	if err != nil {
		return 0, nil, fmt.Errorf("merge into %s: insert: %w", table, err)
	}
	inserted := tag.RowsAffected()
	if inserted == int64(rows.len()) {
		return inserted, nil, nil // nothing was left out: no conflict to look for
	}
	conflicts, err := findConflicts(ctx, tx, table, tmp, quoted)
	if err != nil {
		return 0, nil, err
	}
	return inserted, conflicts, nil
}

// findConflicts returns, in order, the ordinals of the rows of the merge table tmp whose
// natural key holds a row of table that differs from them in some column. Every row of tmp
// has its key in table after the merge's insert, its own or the row already there, so the
// rest are identical: duplicates. jsonb compares as JSON values (key order, 1.0 and 1).
func findConflicts(ctx context.Context, tx pgx.Tx, table, tmp string, quoted []string) ([]int, error) {
	var on []string
	for _, c := range normalize.NaturalKey(table) {
		q := pgx.Identifier{c}.Sanitize()
		on = append(on, "t."+q+" = m."+q)
	}
	// A LATERAL subquery with LIMIT is not flattened into a join: each row of tmp looks
	// its key up in the natural key's index, as ON CONFLICT did, and the planner, which
	// knows nothing of tmp, cannot choose to scan the whole table instead.
	sql := "SELECT m." + ordColumn + " FROM " + tmp + " m CROSS JOIN LATERAL (SELECT " + strings.Join(prefixed("t.", quoted), ", ") +
		" FROM " + pgx.Identifier{table}.Sanitize() + " t WHERE " + strings.Join(on, " AND ") + " LIMIT 1) s" +
		" WHERE (" + strings.Join(prefixed("s.", quoted), ", ") + ") IS DISTINCT FROM (" + strings.Join(prefixed("m.", quoted), ", ") + ")" +
		" ORDER BY m." + ordColumn
	rs, err := tx.Query(ctx, sql)
	if err != nil {
		return nil, fmt.Errorf("merge into %s: compare with the stored rows: %w", table, err)
	}
	ords, err := pgx.CollectRows(rs, func(r pgx.CollectableRow) (int, error) {
		var ord int64
		err := r.Scan(&ord)
		return int(ord), err
	})
	if err != nil {
		return nil, fmt.Errorf("merge into %s: compare with the stored rows: %w", table, err)
	}
	return ords, nil
}

// prefixed returns each of names with prefix before it.
func prefixed(prefix string, names []string) []string {
	out := make([]string, len(names))
	for k, n := range names {
		out[k] = prefix + n
	}
	return out
}
