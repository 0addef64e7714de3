package testenv_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// root is the repository root, relative to this package.
const root = "../.."

// skipCalls are the functions whose string arguments become a skip message: testing's
// Skip and Skipf, Unavailable, and deploytest's lookPath, which passes where a missing
// program comes from to Unavailable.
var skipCalls = []string{"Skip", "Skipf", "Unavailable", "lookPath"}

// skipMessages returns the string literals in the arguments of every skipCalls call in the
// Go files of the repository, by "file:line".
func skipMessages(t *testing.T) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	fset := token.NewFileSet()
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if path != root && (strings.HasPrefix(d.Name(), ".") || d.Name() == "testdata") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		ast.Inspect(f, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok || !slices.Contains(skipCalls, callName(call)) {
				return true
			}
			where := fset.Position(call.Pos()).String()
			for _, arg := range call.Args {
				ast.Inspect(arg, func(n ast.Node) bool {
					if lit, ok := n.(*ast.BasicLit); ok && lit.Kind == token.STRING {
						if s, err := strconv.Unquote(lit.Value); err == nil {
							out[where] = append(out[where], s)
						}
					}
					return true
				})
			}
			return true
		})
		return nil
	})
	if err != nil {
		t.Fatalf("read the Go files: %v", err)
	}
	return out
}

// callName returns the name of the function that call calls: f of f(...) and x.f(...).
func callName(call *ast.CallExpr) string {
	switch fn := call.Fun.(type) {
	case *ast.Ident:
		return fn.Name
	case *ast.SelectorExpr:
		return fn.Sel.Name
	}
	return ""
}

// pathInMessage matches what a message names as a file or directory: a word with a slash
// (deploy/nats/nats.conf, .ci/run) or a file name with a known extension (README.md).
var pathInMessage = regexp.MustCompile(`^(?:[^\s]*/[^\s]*|[^\s/]+\.(?:md|go|sh|yml|yaml|conf|cfg|json|sql|mod))$`)

// messagePaths returns the paths that a skip message names. URLs, format verbs and Go
// package paths in import form (example.com/x) are not paths of the repository.
func messagePaths(msg string) []string {
	var out []string
	for _, w := range strings.Fields(msg) {
		const punct = `()[]{}"',;:` + "`"
		w = strings.TrimRight(strings.TrimLeft(w, punct), punct+".") // not the dot of .ci/run
		switch {
		case w == "", strings.Contains(w, "://"), strings.Contains(w, "%"), !pathInMessage.MatchString(w):
			continue
		}
		out = append(out, w)
	}
	return out
}

func TestMessagePathsFindsFilesOnly(t *testing.T) {
	tests := []struct {
		name, msg string
		want      []string
	}{
		{"file and directory path", "start one with .ci/run (see deploy/nats/nats.conf).", []string{".ci/run", "deploy/nats/nats.conf"}},
		{"file name with extension", "see README.md, Run the tests", []string{"README.md"}},
		{"URL and format verb", "no NATS at nats://127.0.0.1:4222: %s/%v", nil},
		{"plain words", "haproxy (Debian package haproxy) unavailable, test not run", nil},
		{"path outside the repository", "start ../shared/tools/start.sh", []string{"../shared/tools/start.sh"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := messagePaths(tt.msg); !slices.Equal(got, tt.want) {
				t.Errorf("messagePaths(%q) = %q, want %q", tt.msg, got, tt.want)
			}
		})
	}
}

// A skipped test says why, and where it names a file of the repository (a script, a
// README section's file), that file exists, so that the reader can act on it.
func TestSkipMessagesNamePathsThatExist(t *testing.T) {
	calls := skipMessages(t)
	if len(calls) < 3 {
		t.Fatalf("found %d skip calls; the walk of %s missed them", len(calls), root)
	}
	for where, msgs := range calls {
		for _, msg := range msgs {
			for _, p := range messagePaths(msg) {
				if filepath.IsAbs(p) || strings.HasPrefix(p, "../") {
					t.Errorf("%s: skip message %q names %s, outside the repository", where, msg, p)
					continue
				}
				if _, err := os.Stat(filepath.Join(root, p)); err != nil {
					t.Errorf("%s: skip message %q names %s, which does not exist in the repository", where, msg, p)
				}
			}
		}
	}
}
