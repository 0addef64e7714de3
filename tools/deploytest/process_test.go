package deploytest

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"

	"kohaku/testsupport/proc"
	"kohaku/testsupport/testenv"
)

// buildReceiver builds kohaku-receiver into a temporary directory and returns its path.
func buildReceiver(t *testing.T) string {
	t.Helper()
	return build(t, "kohaku-receiver", "receiver/cmd/kohaku-receiver")
}

// buildWriter builds kohaku-writer into a temporary directory and returns its path.
func buildWriter(t *testing.T) string {
	t.Helper()
	return build(t, "kohaku-writer", "writer/cmd/kohaku-writer")
}

// build builds the main package at pkg, relative to the checkout, into a temporary
// directory and returns the path of the program.
func build(t *testing.T, name, pkg string) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), name)
	if err := proc.GoBuild(context.Background(), "", bin, nil, filepath.Join(root, pkg)); err != nil {
		t.Fatalf("build %s: %v", name, err)
	}
	return bin
}

// lookPath returns the path of a program the test needs; without it the test is skipped,
// or fails in CI, where .ci/run installs it. from says where the program comes from.
func lookPath(t *testing.T, program, from string) string {
	t.Helper()
	path, err := exec.LookPath(program)
	if err != nil {
		testenv.Unavailable(t, fmt.Sprintf("%s (%s)", program, from), err)
	}
	return path
}

// processGone reports whether pid no longer exists.
func processGone(pid int) bool {
	return errors.Is(syscall.Kill(pid, 0), syscall.ESRCH)
}
