package normalize

import (
	"flag"
	"os"
	"path/filepath"
	"testing"
)

var update = flag.Bool("update", false, "rewrite "+schemaFile+", "+edgeCasesFile+" and "+numbersFile+" from the code")

// schemaPath is schemaFile seen from this package's directory.
var schemaPath = filepath.Join("..", "..", filepath.FromSlash(schemaFile))

func TestSchemaSQLUpToDate(t *testing.T) {
	want := createTablesSQL()
	if *update {
		if err := os.WriteFile(schemaPath, []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(schemaPath)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != want {
		t.Errorf("%s is not what the member lists give; run go test ./pkg/normalize -run TestSchemaSQLUpToDate -update", schemaFile)
	}
}
