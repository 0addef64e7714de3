// Command addcolumns writes the migration that gives the tables the typed columns of
// pkg/normalize's catalog that the migrations do not create yet. go generate runs it in the
// schema directory (see the go:generate line in schema.go):
//
//	go generate ./schema
//
// It reads the migration files there, compares the columns they create (0001_tables.sql
// and every later ALTER TABLE ... ADD COLUMN) with normalize.Columns and
// normalize.ColumnTypes of every stats table, and writes NNNN_add_<column>.sql (or
// NNNN_add_<n>_columns.sql) with the next free number, one ALTER TABLE ... ADD COLUMN IF
// NOT EXISTS per missing column. It writes nothing when the migrations are up to date, and
// it never edits an existing file: a released migration is never changed. Differences an
// added column cannot mend (a new table, a column whose type changed or that the catalog
// dropped) are reported, and the migration for them is written by hand.
package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"

	"kohaku/pkg/normalize"
	"kohaku/schema/internal/columns"
)

func main() {
	if err := run("."); err != nil {
		fmt.Fprintln(os.Stderr, "addcolumns:", err)
		os.Exit(1)
	}
}

// run writes the next migration into dir, when one is needed.
func run(dir string) error {
	adds, next, err := plan(os.DirFS(dir))
	if err != nil {
		return err
	}
	if len(adds) == 0 {
		fmt.Println("addcolumns: the migrations create every column of the catalog; nothing to write")
		return nil
	}
	name := columns.MigrationName(adds)
	// The form of a migration file's name part (schema.fileName).
	if !regexp.MustCompile(`^[a-z0-9]+(?:_[a-z0-9]+)*$`).MatchString(name) {
		name = fmt.Sprintf("add_%d_columns", len(adds))
	}
	file := filepath.Join(dir, fmt.Sprintf("%04d_%s.sql", next, name))
	f, err := os.OpenFile(file, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return fmt.Errorf("write the migration: %w", err)
	}
	_, err = f.WriteString(columns.AddSQL(adds))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("write %s: %w", file, err)
	}
	for _, a := range adds {
		fmt.Printf("addcolumns: %s: %s.%s %s\n", filepath.Base(file), a.Table, a.Column.Name, a.Column.Type)
	}
	return nil
}

// plan returns the columns that the catalog has and the migrations in fsys lack, and the
// version the next migration takes.
func plan(fsys fs.FS) ([]columns.Addition, int, error) {
	names, err := fs.Glob(fsys, "[0-9][0-9][0-9][0-9]_*.sql")
	if err != nil {
		return nil, 0, err
	}
	if len(names) == 0 {
		return nil, 0, errors.New("no migration files here: run it in the schema directory (go generate ./schema)")
	}
	sqls := make([]string, len(names))
	for k, n := range names {
		if want := fmt.Sprintf("%04d_", k+1); n[:5] != want {
			return nil, 0, fmt.Errorf("migration %s: want version %d (versions start at 1 without gaps)", n, k+1)
		}
		b, err := fs.ReadFile(fsys, n)
		if err != nil {
			return nil, 0, err
		}
		sqls[k] = string(b)
	}
	have, err := columns.FromMigrations(names, sqls)
	if err != nil {
		return nil, 0, err
	}
	adds, err := columns.Missing(normalize.StatsTables(), columns.Catalog(), have)
	if err != nil {
		return nil, 0, err
	}
	return adds, len(names) + 1, nil
}
