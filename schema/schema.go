package schema

import (
	"embed"
	"fmt"
	"io/fs"
	"regexp"
	"sort"
	"strconv"
)

// files holds the numbered migrations. A new schema change is a new file with the next
// number: a file that was released is never edited, since databases already recorded it
// (released.sha256 pins them, and a test fails when one changes). A typed column that
// pkg/normalize's catalog gains is such a file too, written by go generate (doc.go).
//
//go:generate go run ./internal/addcolumns
//go:embed *.sql
var files embed.FS

// Migration is one numbered schema change.
type Migration struct {
	Version int    // the NNNN of the file name, starting at 1, without gaps
	Name    string // the name part of the file name, e.g. "dead_letter"
	SQL     string // the statements, run in one transaction
}

// fileName is the required form of a migration file: four digits, an underscore, a
// lowercase snake_case name.
var fileName = regexp.MustCompile(`^([0-9]{4})_([a-z0-9]+(?:_[a-z0-9]+)*)\.sql$`)

// Migrations returns the embedded migrations in version order. It fails when a file name is
// malformed or the versions do not run 1, 2, 3... without gaps or duplicates.
func Migrations() ([]Migration, error) {
	return parse(files)
}

// parse reads the *.sql files at the root of fsys as migrations.
func parse(fsys fs.FS) ([]Migration, error) {
	entries, err := fs.ReadDir(fsys, ".")
	if err != nil {
		return nil, fmt.Errorf("schema: read migrations: %w", err)
	}
	var ms []Migration
	for _, e := range entries {
		if e.IsDir() {
			continue
		}
		m := fileName.FindStringSubmatch(e.Name())
		if m == nil {
			return nil, fmt.Errorf("schema: migration file %q: want NNNN_name.sql", e.Name())
		}
		v, err := strconv.Atoi(m[1])
		if err != nil {
			return nil, fmt.Errorf("schema: migration file %q: version: %w", e.Name(), err)
		}
		sql, err := fs.ReadFile(fsys, e.Name())
		if err != nil {
			return nil, fmt.Errorf("schema: read migration %q: %w", e.Name(), err)
		}
		ms = append(ms, Migration{Version: v, Name: m[2], SQL: string(sql)})
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].Version < ms[j].Version })
	for i, m := range ms {
		if m.Version != i+1 {
			return nil, fmt.Errorf("schema: migration %04d_%s: want version %d (versions start at 1 without gaps or duplicates)", m.Version, m.Name, i+1)
		}
	}
	if len(ms) == 0 {
		return nil, fmt.Errorf("schema: no migrations")
	}
	return ms, nil
}
