package deploytest

import (
	"path/filepath"
	"strconv"
	"testing"

	"github.com/nats-io/nats-server/v2/server"
)

// TestSingleReplicaNATSSyncsEveryWrite checks the fsync policy of the compose stack: with
// one replica, only a sync before each acknowledgement keeps a stored body through a power
// loss (README.md, "Durability"), so nats.conf must sync always; with three, the default
// interval is enough and the test has nothing to say.
func TestSingleReplicaNATSSyncsEveryWrite(t *testing.T) {
	p := loadProject(t)
	replicas, err := strconv.Atoi(show(service(t, p, "writer").Environment["KOHAKU_STREAM_REPLICAS"]))
	if err != nil {
		t.Fatalf("KOHAKU_STREAM_REPLICAS of the writer: %v", err)
	}
	opts, err := server.ProcessConfigFile(filepath.Join(root, "deploy/nats/nats.conf"))
	if err != nil {
		t.Fatalf("nats.conf: %v", err)
	}
	if replicas == 1 && !opts.SyncAlways {
		t.Error("nats.conf does not set jetstream { sync_interval: always }: with one replica, a power loss can lose the bodies answered 204 since the last sync")
	}
}
