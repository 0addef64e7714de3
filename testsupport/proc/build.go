package proc

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
)

// GoBuild runs `go build -o out args...` in dir, the current directory when empty, with
// env (such as GOEXPERIMENT=simd) added to this process's environment; args are build
// flags and packages. Its error holds what go build printed.
func GoBuild(ctx context.Context, dir, out string, env []string, args ...string) error {
	cmd := exec.CommandContext(ctx, "go", append([]string{"build", "-o", out}, args...)...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build: %w\n%s", err, b)
	}
	return nil
}

// Binary is a main package that tests run as a program. Declare one per program in the
// test package and call Remove from TestMain once the tests have run.
type Binary struct {
	Name string // the program's file name
	Pkg  string // the main package as go build takes it, relative to Dir
	Dir  string // where go build runs; empty for the test's package directory
	// Race builds with the race detector. Set it when the test binary has it on, so that the
	// build reuses the packages compiled for the test.
	Race bool

	once sync.Once
	tmp  string // the temporary directory holding the program
	path string
	err  error
}

// Build builds the program on its first call, into a new temporary directory, and returns
// its path; later and concurrent calls return the first call's result.
func (b *Binary) Build() (string, error) {
	b.once.Do(func() {
		tmp, err := os.MkdirTemp("", b.Name+"-")
		if err != nil {
			b.err = fmt.Errorf("build %s: %w", b.Name, err)
			return
		}
		b.tmp = tmp
		args := []string{b.Pkg}
		if b.Race {
			args = []string{"-race", b.Pkg}
		}
		path := filepath.Join(tmp, b.Name)
		if err := GoBuild(context.Background(), b.Dir, path, nil, args...); err != nil {
			b.err = fmt.Errorf("build %s: %w", b.Name, err)
			return
		}
		b.path = path
	})
	return b.path, b.err
}

// Path is Build for the test t, which fails when the build does.
func (b *Binary) Path(t testing.TB) string {
	t.Helper()
	path, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	return path
}

// Remove deletes the program and its temporary directory, if it was built. Call it when no
// test runs any more, as TestMain does after m.Run.
func (b *Binary) Remove() error {
	if b.tmp == "" {
		return nil
	}
	if err := os.RemoveAll(b.tmp); err != nil {
		return fmt.Errorf("remove %s: %w", b.Name, err)
	}
	return nil
}
