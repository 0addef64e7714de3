package main

import (
	"os"
	"path/filepath"
	"testing"
)

// Run in a copy of the first migration, the generator writes one migration after which the
// files create every column of the catalog; run again, it writes nothing more.
func TestRunWritesTheMissingColumnsOnce(t *testing.T) {
	dir := t.TempDir()
	first, err := os.ReadFile(filepath.Join("..", "..", "0001_tables.sql"))
	if err != nil {
		t.Fatal(err)
	}
	// 0001 alone, as if the catalog had grown since: every column added after it is missing.
	if err := os.WriteFile(filepath.Join(dir, "0001_tables.sql"), first, 0o644); err != nil {
		t.Fatal(err)
	}
	adds, next, err := plan(os.DirFS(dir))
	if err != nil {
		t.Fatal(err)
	}
	if next != 2 {
		t.Errorf("next version %d, want 2", next)
	}
	if err := run(dir); err != nil {
		t.Fatal(err)
	}
	files, err := filepath.Glob(filepath.Join(dir, "*.sql"))
	if err != nil {
		t.Fatal(err)
	}
	wantFiles := 1
	if len(adds) > 0 {
		wantFiles = 2
	}
	if len(files) != wantFiles {
		t.Fatalf("files after go generate: %v, want %d", files, wantFiles)
	}
	if adds, _, err := plan(os.DirFS(dir)); err != nil || len(adds) != 0 {
		t.Fatalf("after go generate the plan is %v, %v; want nothing left to add", adds, err)
	}
	if err := run(dir); err != nil {
		t.Fatal(err)
	}
	if again, _ := filepath.Glob(filepath.Join(dir, "*.sql")); len(again) != len(files) {
		t.Errorf("a second go generate wrote %v, want nothing new", again)
	}
}

// The migrations of this repository are up to date with the catalog: go generate has
// nothing to write (schema's TestMigrationsCreateTheCatalogColumns says the same against
// the embedded files).
func TestRepositoryMigrationsAreUpToDate(t *testing.T) {
	adds, _, err := plan(os.DirFS(filepath.Join("..", "..")))
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range adds {
		t.Errorf("%s.%s %s has no migration: run go generate ./schema", a.Table, a.Column.Name, a.Column.Type)
	}
}
