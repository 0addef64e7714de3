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
	parts   [][][]any
	origins [][]normalize.Origin // per part: the element of each row
	msgs    []int                // per part: the index of its message in the batch
	n       int                  // rows in all parts

	part, row int  // cursor: the current row is parts[part][row-1]
	ord       bool // Values appends the row's ordinal in r (see merge)
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
func copyRows(ctx context.Context, tx pgx.Tx, t *tableSQL, rows *tableRows) (int64, error) {
	n, err := copyFrom(ctx, tx, t.copy, rows)
	if err != nil {
		return 0, fmt.Errorf("copy %d rows into %s: %w", rows.len(), t.copy.into, err)
	}
	return n, nil
}
