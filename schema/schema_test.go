package schema

import (
	"io/fs"
	"strings"
	"testing"
	"testing/fstest"
)

func TestEmbeddedMigrationsAreNumberedWithoutGaps(t *testing.T) {
	ms, err := Migrations()
	if err != nil {
		t.Fatalf("Migrations: %v", err)
	}
	names, err := fs.Glob(files, "*")
	if err != nil {
		t.Fatal(err)
	}
	if len(names) != len(ms) {
		t.Errorf("embedded files %v, want only the %d migrations", names, len(ms))
	}
	for i, m := range ms {
		if m.Version != i+1 {
			t.Errorf("migration %d has version %d, want %d", i, m.Version, i+1)
		}
		if strings.TrimSpace(m.SQL) == "" {
			t.Errorf("migration %04d_%s is empty", m.Version, m.Name)
		}
	}
	if ms[0].Name != "tables" || len(ms) < 2 || ms[1].Name != "dead_letter" {
		t.Errorf("first migrations %v, want 0001_tables and 0002_dead_letter", ms)
	}
}

func TestParse(t *testing.T) {
	file := func(s string) *fstest.MapFile { return &fstest.MapFile{Data: []byte(s)} }
	tests := []struct {
		name    string
		fsys    fstest.MapFS
		want    []Migration
		wantErr string
	}{
		{
			name: "ordered by version whatever the listing order",
			fsys: fstest.MapFS{"0002_b.sql": file("B"), "0001_a_b.sql": file("A")},
			want: []Migration{{1, "a_b", "A"}, {2, "b", "B"}},
		},
		{name: "gap", fsys: fstest.MapFS{"0001_a.sql": file("A"), "0003_c.sql": file("C")}, wantErr: "want version 2"},
		{name: "duplicate version", fsys: fstest.MapFS{"0001_a.sql": file("A"), "0001_b.sql": file("B")}, wantErr: "want version 2"},
		{name: "not starting at 1", fsys: fstest.MapFS{"0002_a.sql": file("A")}, wantErr: "want version 1"},
		{name: "three digits", fsys: fstest.MapFS{"001_a.sql": file("A")}, wantErr: "want NNNN_name.sql"},
		{name: "upper case name", fsys: fstest.MapFS{"0001_Tables.sql": file("A")}, wantErr: "want NNNN_name.sql"},
		{name: "dash in name", fsys: fstest.MapFS{"0001_dead-letter.sql": file("A")}, wantErr: "want NNNN_name.sql"},
		{name: "no name", fsys: fstest.MapFS{"0001.sql": file("A")}, wantErr: "want NNNN_name.sql"},
		{name: "empty", fsys: fstest.MapFS{}, wantErr: "no migrations"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parse(tt.fsys)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("parse error %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("parse: %v", err)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
			for i := range got {
				if got[i] != tt.want[i] {
					t.Errorf("migration %d: got %+v, want %+v", i, got[i], tt.want[i])
				}
			}
		})
	}
}
