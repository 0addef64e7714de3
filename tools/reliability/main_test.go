package reliability

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// binaries are the paths of kohaku-receiver and kohaku-writer, built once by TestMain.
var binaries struct {
	receiver, writer string
}

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	dir, err := os.MkdirTemp("", "kohaku-reliability")
	if err != nil {
		fmt.Fprintln(os.Stderr, "reliability:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	if err := build(dir); err != nil {
		fmt.Fprintln(os.Stderr, "reliability:", err)
		return 1
	}
	binaries.receiver = filepath.Join(dir, "kohaku-receiver")
	binaries.writer = filepath.Join(dir, "kohaku-writer")
	return m.Run()
}

// build builds both binaries into dir from the root of the workspace, two levels up. They
// are built without the race detector: it is the harness that runs under -race here, and
// the binaries have race-enabled tests of their own.
func build(dir string) error {
	cmd := exec.Command("go", "build", "-o", dir, "./receiver/cmd/kohaku-receiver", "./writer/cmd/kohaku-writer")
	cmd.Dir = filepath.Join("..", "..")
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("build the binaries: %w\n%s", err, out)
	}
	return nil
}
