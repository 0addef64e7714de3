package embedded_test

import (
	"os"
	"regexp"
	"testing"

	"kohaku/testsupport/testenv"
)

// Tests run the nats-server release of testenv.NATSServerVersion as a child process; it must
// be the one the writer embeds (its go.mod), so that tests meet the JetStream that operators
// run. Test binaries carry no dependency list, so the go.mod is read.
func TestTestsRunTheEmbeddedNATSServerRelease(t *testing.T) {
	mod, err := os.ReadFile("../go.mod")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^\s*github\.com/nats-io/nats-server/v2 (v\S+)`).FindSubmatch(mod)
	if m == nil {
		t.Fatal("writer/go.mod does not require github.com/nats-io/nats-server/v2")
	}
	if got := string(m[1]); got != testenv.NATSServerVersion {
		t.Errorf("the writer embeds nats-server %s, tests run %s: set testenv.NATSServerVersion", got, testenv.NATSServerVersion)
	}
}
