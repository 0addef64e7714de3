package reliability

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"testing"
	"time"

	"kohaku/pkg/stream"
	"kohaku/testsupport/testenv"
	"kohaku/writer/embedded"
)

func TestStreamLeaderKilledInCluster(t *testing.T) {
	p := newPipeline(t, setup{cluster: true, receivers: 2})
	run := steady(4).start(t, p.collectorURLs())

	time.Sleep(1500 * time.Millisecond)
	leader := p.streamLeader()
	leader.Shutdown()
	killed := time.Now()
	rest := slices.DeleteFunc(slices.Clone(p.nats), func(s *embedded.Server) bool { return s == leader })
	testenv.Eventually(t, 30*time.Second, func() error { // a new leader among the two left
		if l := p.streamLeader(); !slices.Contains(rest, l) {
			return fmt.Errorf("stream leader is still %s", l.URL())
		}
		return nil
	})
	for _, r := range p.receivers {
		r.waitReady(t, 30*time.Second)
	}
	time.Sleep(2 * time.Second) // load on the new leader
	rec := run.stop()

	rec.only(t, http.StatusNoContent, http.StatusServiceUnavailable)
	if n := rec.acceptedAfter(killed); n < 100 {
		t.Errorf("%d requests answered 204 after the leader was killed, want at least 100", n)
	}
	v := p.verify(rec.all(), 200)
	t.Logf("around the election: %d requests answered 503 or not at all, %d of their rows stored anyway", v.unanswered, v.extra)
}

// streamLeader returns the node that leads the stream now.
func (p *pipeline) streamLeader() *embedded.Server {
	t := p.t
	t.Helper()
	var name string
	testenv.Eventually(t, 30*time.Second, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		s, err := p.js.Stream(ctx, stream.Name)
		if err != nil {
			return err
		}
		if c := s.CachedInfo().Cluster; c != nil && c.Leader != "" {
			name = c.Leader
			return nil
		}
		return fmt.Errorf("stream %s has no leader", stream.Name)
	})
	for i, n := range p.nats {
		if name == "node-"+strconv.Itoa(i) {
			return n
		}
	}
	t.Fatalf("stream leader %q is none of the nodes", name)
	return nil
}
