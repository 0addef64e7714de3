package reliability

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"kohaku/testsupport/testenv"
)

func TestWriterKilledThreeTimesUnderLoad(t *testing.T) {
	p := newPipeline(t, setup{receivers: 2})
	run := steady(2).start(t, p.collectorURLs())

	held := 0
	for kill := range 3 {
		// Kill a writer that is writing, not one that is starting.
		before := p.storedRows()
		testenv.Eventually(t, 30*time.Second, func() error {
			if n := p.storedRows(); n < before+200 {
				return fmt.Errorf("writer %d has stored %d rows since it started, want 200 before the kill", kill, n-before)
			}
			return nil
		})
		// And kill it while it holds messages it has not acknowledged yet.
		testenv.Eventually(t, 10*time.Second, func() error {
			ci, _, err := p.consumer()
			if err == nil && ci.NumAckPending == 0 {
				err = fmt.Errorf("writer %d holds no message", kill)
			}
			return err
		})
		if err := p.writer.Kill(); err != nil {
			t.Error(err)
		}
		if ci, _, err := p.consumer(); err == nil {
			held += ci.NumAckPending
			t.Logf("writer %d killed holding %d messages delivered and not acknowledged", kill, ci.NumAckPending)
		}
		p.startWriter()
	}
	if held == 0 {
		t.Error("no kill caught a writer holding messages: the crash was not tested")
	}
	time.Sleep(time.Second) // load on the last writer too
	rec := run.stop()

	rec.only(t, http.StatusNoContent, http.StatusServiceUnavailable)
	p.verify(rec.all(), 300)
}

// storedRows returns the number of rows in rtc_peer_connection_stats, one per report of a
// connection: a cheap measure of the writer's progress.
func (p *pipeline) storedRows() int {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var n int
	if err := p.pool.QueryRow(ctx, "SELECT count(*) FROM rtc_peer_connection_stats").Scan(&n); err != nil {
		p.t.Fatalf("count rows: %v", err)
	}
	return n
}
