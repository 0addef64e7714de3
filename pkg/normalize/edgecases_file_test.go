package normalize

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"testing"
)

var update = flag.Bool("update", false, "rewrite "+edgeCasesFile+" and "+numbersFile+" from the code")

// edgeCasesFile holds the stats arrays of edgeCases, for the test in schema/ that copies
// every edge case into the real tables and reads it back (that test needs PostgreSQL, which
// this module's tests do not reach).
const edgeCasesFile = "testdata/edgecases/stats.json"

// TestEdgeCasesFileIsUpToDate keeps edgeCasesFile equal to edgeCases; -update rewrites it.
func TestEdgeCasesFileIsUpToDate(t *testing.T) {
	type entry struct {
		Name  string          `json:"name"`
		Stats json.RawMessage `json:"stats"`
	}
	var entries []entry
	for _, ec := range edgeCases() {
		entries = append(entries, entry{ec.name, json.RawMessage(ec.stats)})
	}
	want, err := json.MarshalIndent(entries, "", "\t")
	if err != nil {
		t.Fatal(err)
	}
	want = append(want, '\n')
	if *update {
		if err := os.WriteFile(edgeCasesFile, want, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	got, err := os.ReadFile(edgeCasesFile)
	if err != nil || !bytes.Equal(got, want) {
		t.Errorf("%s is not what edgeCases gives (%v); run go test ./pkg/normalize -run TestEdgeCasesFileIsUpToDate -update", edgeCasesFile, err)
	}
}
