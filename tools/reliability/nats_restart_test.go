package reliability

import (
	"net/http"
	"testing"
	"time"
)

func TestNATSRestartedUnderLoad(t *testing.T) {
	p := newPipeline(t, setup{receivers: 2})
	run := steady(3).start(t, p.collectorURLs())

	time.Sleep(time.Second)
	p.nats[0].Shutdown()
	time.Sleep(2 * time.Second) // the receivers answer 503 meanwhile
	if err := p.nats[0].Restart(); err != nil {
		t.Fatalf("restart NATS: %v", err)
	}
	restarted := time.Now()
	for _, r := range p.receivers {
		r.waitReady(t, 30*time.Second)
	}
	time.Sleep(2 * time.Second) // load after the restart
	rec := run.stop()

	st := rec.statuses()
	if st[http.StatusServiceUnavailable] == 0 {
		t.Errorf("answers: %v, want some 503 while NATS was down", st)
	}
	rec.only(t, http.StatusNoContent, http.StatusServiceUnavailable)
	if n := rec.acceptedAfter(restarted); n < 100 {
		t.Errorf("%d requests answered 204 after NATS restarted, want at least 100", n)
	}
	v := p.verify(rec.all(), 200)
	t.Logf("while NATS was down: %d requests answered 503 or not at all, %d of their rows stored anyway", v.unanswered, v.extra)
}
