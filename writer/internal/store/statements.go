package store

import (
	"strings"

	"github.com/jackc/pgx/v5"

	"kohaku/pkg/normalize"
)

// statements are the SQL texts and column types of every table that rows go to, made once
// by newStatements: each is built from the quoted list of a table's 10 to 80 columns, which
// cost a transaction about 25 µs of CPU to copy a report and 150 µs more to merge one
// (every table), as much as normalizing it, when every batch built them anew.
type statements map[string]*tableSQL

// tableSQL is what the store sends PostgreSQL about one table.
type tableSQL struct {
	copy      *copyTarget // its rows straight into it
	copyMerge *copyTarget // its rows into its merge table, with their ordinals
	// createMerge creates the merge table, insertMerge inserts from it the rows whose key
	// is not yet present, and conflicts selects the ordinals of the others that differ
	// from the stored row (see merge).
	createMerge, insertMerge, conflicts string
	// columnTypes are the PostgreSQL types of its columns (normalize.ColumnTypes), and
	// conflict the error of a dead letter in conflict after "stats[i]: ".
	columnTypes []string
	conflict    string
}

// newStatements returns the statements of every table that normalize.Message fills.
func newStatements() statements {
	s := statements{}
	for _, table := range normalize.StatsTables() {
		s[table] = newTableSQL(table)
	}
	return s
}

// of returns the statements of table, made now if s has none: no table that Message fills.
func (s statements) of(table string) *tableSQL {
	if t := s[table]; t != nil {
		return t
	}
	return newTableSQL(table)
}

func newTableSQL(table string) *tableSQL {
	list := columnList(table)
	merge := pgx.Identifier{mergeTable(table)}.Sanitize()
	return &tableSQL{
		copy:      newCopyTarget(table, table, false),
		copyMerge: newCopyTarget(mergeTable(table), table, true),
		createMerge: "CREATE TEMPORARY TABLE " + merge + " ON COMMIT DROP AS SELECT " + list + ", 0::bigint AS " + ordColumn +
			" FROM " + pgx.Identifier{table}.Sanitize() + " WITH NO DATA",
		insertMerge: "INSERT INTO " + pgx.Identifier{table}.Sanitize() + " (" + list + ") SELECT " + list + " FROM " + merge +
			" ORDER BY " + ordColumn + " ON CONFLICT DO NOTHING",
		conflicts:   conflictSQL(table),
		columnTypes: normalize.ColumnTypes(table),
		conflict: table + " already holds a row with the same " + strings.Join(normalize.NaturalKey(table), ", ") +
			" and different content",
	}
}

// copyTarget is where a COPY of one table's rows goes: a table with that table's columns
// (it or another made like it), and the statement that copies them in binary format.
type copyTarget struct {
	into    string    // the table copied into
	columns []string  // normalize.Columns of the rows' table, then ordColumn when ord
	ord     bool      // each row goes with its ordinal in the rows copied
	types   []colType // of normalize.Columns, nil when the encoder cannot write one of them
	sql     string    // COPY ... FROM STDIN (FORMAT binary)
}

// newCopyTarget returns the target that copies rows of table layout into table into, with
// their ordinals in ordColumn when ord is set.
func newCopyTarget(into, layout string, ord bool) *copyTarget {
	t := &copyTarget{into: into, columns: normalize.Columns(layout), ord: ord}
	if ord {
		t.columns = append(t.columns, ordColumn)
	}
	if types, ok := columnTypes(layout); ok {
		t.types = types
	}
	quoted := make([]string, len(t.columns))
	for k, c := range t.columns {
		quoted[k] = pgx.Identifier{c}.Sanitize()
	}
	t.sql = "COPY " + pgx.Identifier{into}.Sanitize() + " (" + strings.Join(quoted, ", ") + ") FROM STDIN (FORMAT binary)"
	return t
}
