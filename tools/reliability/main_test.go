package reliability

import (
	"fmt"
	"os"
	"testing"

	"kohaku/testsupport/proc"
)

// binaries are kohaku-receiver and kohaku-writer, built once from the root of the
// workspace, two levels up. They are built without the race detector: it is the harness
// that runs under -race here, and the binaries have race-enabled tests of their own.
var binaries = struct{ receiver, writer *proc.Binary }{
	receiver: &proc.Binary{Name: "kohaku-receiver", Pkg: "./receiver/cmd/kohaku-receiver", Dir: "../.."},
	writer:   &proc.Binary{Name: "kohaku-writer", Pkg: "./writer/cmd/kohaku-writer", Dir: "../.."},
}

func TestMain(m *testing.M) {
	code := m.Run()
	for _, b := range []*proc.Binary{binaries.receiver, binaries.writer} {
		if err := b.Remove(); err != nil {
			fmt.Fprintln(os.Stderr, "reliability:", err)
		}
	}
	os.Exit(code)
}
