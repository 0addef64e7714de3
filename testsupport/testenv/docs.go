package testenv

import (
	"os"
	"strings"
	"testing"
)

// DocSection keeps the text between the markers "<!-- NAME -->" and "<!-- /NAME -->" of
// the file at path equal to want: it fails the test when they differ, or rewrites the file
// when update is set (a test's -update flag). Generated documentation stays in sync this way.
func DocSection(t testing.TB, path, name, want string, update bool) {
	t.Helper()
	begin, end := "<!-- "+name+" -->\n", "<!-- /"+name+" -->"
	doc, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	head, rest, ok := strings.Cut(string(doc), begin)
	current, tail, ok2 := strings.Cut(rest, end)
	if !ok || !ok2 {
		t.Fatalf("%s lacks the markers %q and %q", path, strings.TrimSpace(begin), end)
	}
	if current == want {
		return
	}
	if update {
		if err := os.WriteFile(path, []byte(head+begin+want+end+tail), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	t.Errorf("%s: the section %s is out of date; run this test with -update\nwant:\n%s\ngot:\n%s", path, name, want, current)
}
