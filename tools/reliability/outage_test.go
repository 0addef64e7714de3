package reliability

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"kohaku/testsupport/testenv"
)

func TestDatabaseOutageUnderLoad(t *testing.T) {
	p := newPipeline(t, setup{receivers: 1})
	run := steady(1).start(t, p.collectorURLs())

	time.Sleep(time.Second) // load before the outage
	p.blockDatabase()
	outage := time.Now()
	testenv.Eventually(t, 10*time.Second, func() error { // the writer noticed
		if code, _, err := p.writer.get("/readyz"); err != nil || code == http.StatusOK {
			return fmt.Errorf("writer /readyz during the outage: %d %v, want 503", code, err)
		}
		return nil
	})
	time.Sleep(10*time.Second - time.Since(outage))
	p.allowDatabase()
	back := time.Now()
	time.Sleep(time.Second) // and after it
	rec := run.stop()

	// The receiver does not need the database: it goes on storing into the stream. (A 503
	// is allowed: on a busy machine a PubAck can be late.)
	rec.only(t, http.StatusNoContent, http.StatusServiceUnavailable)
	if n := rec.acceptedBetween(outage, back); n < 200 {
		t.Errorf("%d requests answered 204 during the database outage, want at least 200", n)
	}
	p.verify(rec.all(), 500)
	if p.writer.Exited() {
		t.Errorf("the writer exited during the outage: %v", p.writer.Err())
	}
}
