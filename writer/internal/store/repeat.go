package store

import (
	"bytes"
	"encoding/json"
	"slices"
	"time"

	"kohaku/pkg/normalize"
)

// repeats is what settleRepeats decided about reports that a batch holds twice.
type repeats struct {
	msgs      []Message    // the batch, later copies of a report reduced to their new rows
	conflicts []deadLetter // rows of a later copy that differ from the first copy's
	// duplicates counts the rows of later copies not copied, equal or conflicting, as the
	// merge counts the rows it does not insert; inTx takes the new conflicts off.
	duplicates int
	undecided  bool // some jsonb values Go cannot compare for sure: the database must
}

// settleRepeats finds the reports that msgs hold more than once (one connection, one time
// as stored: a redelivery within the batch, or a report sent twice with different content)
// and compares their rows in Go, so that such a batch needs neither a COPY that fails nor
// the merge through temporary tables: an equal row is a duplicate, a row that differs is a
// conflict, and a row the first copy lacks is copied. jsonb values compare as the
// database compares them (jsonbEqual); the rare ones Go cannot be sure about are left
// undecided, for the database to compare.
func settleRepeats(msgs []Message, sql statements) repeats {
	first := make(map[reportKey]int, len(msgs))
	r := repeats{msgs: msgs}
	cloned := false
	for i, m := range msgs {
		k, ok := keyOf(m)
		if !ok {
			continue
		}
		j, seen := first[k]
		if !seen {
			first[k] = i
			continue
		}
		if !cloned {
			r.msgs, cloned = slices.Clone(msgs), true // reduced copies replace messages, not the caller's
		}
		r.msgs[i] = r.reduce(msgs, i, msgs[j].Rows, sql)
	}
	return r
}

// reduce returns msgs[i] with only the rows that earlier, the rows of the first copy of
// its report, lacks; it records the others as duplicates or conflicts.
func (r *repeats) reduce(msgs []Message, i int, earlier *normalize.Rows, sql statements) Message {
	m := msgs[i]
	rows := *m.Rows
	rows.Tables = make(map[string][][]any, len(m.Rows.Tables))
	rows.Origins = make(map[string][]normalize.Origin, len(m.Rows.Tables))
	rows.Count = 0
	for table, rs := range m.Rows.Tables {
		byID := statsIDs(earlier.Tables[table])
		t := sql.of(table)
		origins := m.Rows.Origins[table]
		for k, row := range rs {
			prev, ok := byID[row[idColumn]]
			if !ok {
				rows.Tables[table] = append(rows.Tables[table], row)
				rows.Origins[table] = append(rows.Origins[table], origins[k])
				rows.Count++
				continue
			}
			switch compareRows(t.columnTypes, prev, row) {
			case rowsEqual:
				r.duplicates++
			case rowsDiffer:
				r.duplicates++
				r.conflicts = append(r.conflicts, conflictDeadLetter(msgs, i, table, t, origins[k]))
			default:
				r.undecided = true
				rows.Tables[table] = append(rows.Tables[table], row)
				rows.Origins[table] = append(rows.Origins[table], origins[k])
				rows.Count++
			}
		}
	}
	m.Rows = &rows
	return m
}

// idColumn is where a stats row holds its stats_id: within one report, the only part of the
// natural key (connection_id, stats_id, time) that varies.
const idColumn = 4

// statsIDs indexes rows by their stats_id.
func statsIDs(rows [][]any) map[any][]any {
	out := make(map[any][]any, len(rows))
	for _, row := range rows {
		out[row[idColumn]] = row
	}
	return out
}

type comparison int

const (
	rowsEqual comparison = iota
	rowsDiffer
	rowsUndecided
)

// compareRows compares two rows of one table as the database's IS DISTINCT FROM would. It
// leaves undecided only the jsonb values that jsonbEqual cannot be sure about.
func compareRows(types []string, a, b []any) comparison {
	res := rowsEqual
	for k := range a {
		x, y := a[k], b[k]
		switch {
		case x == nil || y == nil:
			if x != y {
				return rowsDiffer
			}
		case types[k] == "jsonb":
			switch equal, ok := jsonbEqual(jsonBytes(x), jsonBytes(y)); {
			case !ok:
				res = rowsUndecided
			case !equal:
				return rowsDiffer
			}
		default:
			if !sameValue(x, y) {
				return rowsDiffer
			}
		}
	}
	return res
}

func jsonBytes(v any) []byte {
	switch x := v.(type) {
	case []byte:
		return x
	case json.RawMessage:
		return x
	case string:
		return []byte(x)
	}
	return nil
}

func sameValue(x, y any) bool {
	switch a := x.(type) {
	case time.Time:
		b, ok := y.(time.Time)
		return ok && a.Equal(b)
	case []byte:
		b, ok := y.([]byte)
		return ok && bytes.Equal(a, b)
	}
	return x == y
}
