package schema

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"testing"
	"testing/fstest"
)

// releasedFile lists every released migration with its SHA-256, as sha256sum writes them.
const releasedFile = "released.sha256"

// released reads the manifest of released migrations in fsys and returns them, in version
// order, after checking that each listed file is still there with the same content, and
// that they are the first migrations without a gap: what a database of the newest release
// holds.
func released(fsys fs.FS) ([]Migration, error) {
	manifest, err := fs.ReadFile(fsys, releasedFile)
	if err != nil {
		return nil, err
	}
	all, err := parse(sqlFiles(fsys))
	if err != nil {
		return nil, err
	}
	var out []Migration
	var problems []string
	for n, line := range strings.Split(strings.TrimRight(string(manifest), "\n"), "\n") {
		sum, name, ok := strings.Cut(line, "  ")
		if !ok || len(sum) != 64 {
			return nil, fmt.Errorf("%s line %d: want \"<sha256>  <file>\" as sha256sum writes it, got %q", releasedFile, n+1, line)
		}
		data, err := fs.ReadFile(fsys, name)
		if err != nil {
			problems = append(problems, fmt.Sprintf("%s was released and is gone: %v", name, err))
			continue
		}
		got := sha256.Sum256(data)
		if hex.EncodeToString(got[:]) != sum {
			problems = append(problems, fmt.Sprintf("%s was released and has changed (SHA-256 %x, released %s)", name, got, sum))
			continue
		}
		if len(out) >= len(all) || fmt.Sprintf("%04d_%s.sql", all[len(out)].Version, all[len(out)].Name) != name {
			problems = append(problems, fmt.Sprintf("%s: the released migrations must be the first ones, in order", name))
			continue
		}
		out = append(out, all[len(out)])
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("released migrations never change (databases recorded them): put the change in a new migration\n\t%s",
			strings.Join(problems, "\n\t"))
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s lists no migration", releasedFile)
	}
	return out, nil
}

// sqlFiles returns the *.sql files at the root of fsys, what go:embed takes into files.
func sqlFiles(fsys fs.FS) fs.FS {
	out := fstest.MapFS{}
	names, _ := fs.Glob(fsys, "*.sql") // the pattern is valid
	for _, n := range names {
		if data, err := fs.ReadFile(fsys, n); err == nil {
			out[n] = &fstest.MapFile{Data: data}
		}
	}
	return out
}

// releasedMigrations returns the migrations of the newest release from this directory.
func releasedMigrations(t testing.TB) []Migration {
	t.Helper()
	ms, err := released(os.DirFS("."))
	if err != nil {
		t.Fatal(err)
	}
	return ms
}

func TestReleasedMigrationsNeverChange(t *testing.T) {
	ms := releasedMigrations(t)
	embedded, err := Migrations()
	if err != nil {
		t.Fatal(err)
	}
	for k, m := range ms {
		if embedded[k] != m {
			t.Errorf("the embedded migration %04d_%s differs from the released file", m.Version, m.Name)
		}
	}
}

func TestReleasedRefusesAChangedOrMissingMigration(t *testing.T) {
	sum := func(s string) string { h := sha256.Sum256([]byte(s)); return hex.EncodeToString(h[:]) }
	file := func(s string) *fstest.MapFile { return &fstest.MapFile{Data: []byte(s)} }
	manifest := func(lines ...string) *fstest.MapFile { return file(strings.Join(lines, "\n") + "\n") }
	tests := []struct {
		name    string
		fsys    fstest.MapFS
		want    int
		wantErr string
	}{
		{
			name: "unchanged, with a newer migration not yet released",
			fsys: fstest.MapFS{"0001_a.sql": file("A"), "0002_b.sql": file("B"), "0003_c.sql": file("C"),
				releasedFile: manifest(sum("A")+"  0001_a.sql", sum("B")+"  0002_b.sql")},
			want: 2,
		},
		{
			name:    "an edited migration",
			fsys:    fstest.MapFS{"0001_a.sql": file("A edited"), releasedFile: manifest(sum("A") + "  0001_a.sql")},
			wantErr: "0001_a.sql was released and has changed",
		},
		{
			name: "a removed migration",
			fsys: fstest.MapFS{"0001_a.sql": file("A"), "0002_c.sql": file("C"),
				releasedFile: manifest(sum("A")+"  0001_a.sql", sum("B")+"  0002_b.sql")},
			wantErr: "0002_b.sql was released and is gone",
		},
		{
			name: "a gap in the released migrations",
			fsys: fstest.MapFS{"0001_a.sql": file("A"), "0002_b.sql": file("B"),
				releasedFile: manifest(sum("B") + "  0002_b.sql")},
			wantErr: "must be the first ones",
		},
		{
			name:    "a line not as sha256sum writes it",
			fsys:    fstest.MapFS{"0001_a.sql": file("A"), releasedFile: manifest(sum("A") + " 0001_a.sql")},
			wantErr: "line 1",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := released(tt.fsys)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want one saying %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != tt.want {
				t.Errorf("got %d released migrations, want %d", len(got), tt.want)
			}
		})
	}
}
