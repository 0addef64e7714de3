package sqltext

import (
	"reflect"
	"testing"
)

func TestSplitCutsOnlyAtSemicolonsOutsideQuotesAndComments(t *testing.T) {
	tests := []struct {
		name string
		sql  string
		want []string
	}{
		{"two statements and comments", "-- head; comment\nSELECT 1;\n/* a; /* nested; */ b */ SELECT $1, $2;\n", []string{"SELECT 1", "SELECT $1, $2"}},
		{"semicolons in strings and identifiers", `SELECT 'a;''b', "c;d"; SELECT 2`, []string{`SELECT 'a;''b', "c;d"`, "SELECT 2"}},
		{"dollar-quoted body", "DO $x$ BEGIN PERFORM 1; END $x$; SELECT $$;$$", []string{"DO $x$ BEGIN PERFORM 1; END $x$", "SELECT $$;$$"}},
		{"a comment inside a statement is dropped", "SELECT 1 -- one; two\n+ 2;", []string{"SELECT 1 \n+ 2"}},
		{"only comments", "-- nothing\n;;", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Split(tt.sql); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}
