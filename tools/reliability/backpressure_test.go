package reliability

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"kohaku/testsupport/proc"
	"kohaku/testsupport/testenv"
)

// TestBackpressureWhenTheStreamIsFull fills a small stream while the database is down:
// once full, the receivers answer 503 with Retry-After and report themselves not ready,
// and the stream's fill series shows the limit; nothing acknowledged is deleted to make
// room. When the database is back the writer catches up, deletes what it wrote beyond
// KOHAKU_STREAM_TRIM_PERCENT, the receivers are ready and store again, and every body
// answered 204 is in the database exactly once.
func TestBackpressureWhenTheStreamIsFull(t *testing.T) {
	const maxBytes = 3 << 20
	p := newPipeline(t, setup{receivers: 2, maxBytes: maxBytes})
	p.blockDatabase()
	testenv.Eventually(t, 10*time.Second, func() error { // the writer noticed
		if code, _, err := p.writer.get("/readyz"); err != nil || code == http.StatusOK {
			return fmt.Errorf("writer /readyz with the database down: %d %v, want 503", code, err)
		}
		return nil
	})
	outage := time.Now()
	run := steady(14).start(t, p.collectorURLs())

	// About 110 reports a second of some 10 KB: the stream is full within seconds.
	testenv.Eventually(t, 30*time.Second, func() error {
		if n := run.rec.statuses()[http.StatusServiceUnavailable]; n == 0 {
			return fmt.Errorf("no 503 yet: %v", run.rec.statuses())
		}
		return nil
	})
	full := time.Now()
	for _, r := range p.receivers {
		testenv.Eventually(t, 10*time.Second, func() error {
			if code, body, err := r.get("/readyz"); err != nil || code != http.StatusServiceUnavailable {
				return fmt.Errorf("%s /readyz with the stream full: %d %q %v, want 503", r.Name(), code, body, err)
			}
			if code, _, err := proc.Get("http://" + r.addr + "/.ok"); err != nil || code != http.StatusServiceUnavailable {
				return fmt.Errorf("%s GET /.ok with the stream full: %d %v, want 503", r.Name(), code, err)
			}
			return nil
		})
	}
	var filled float64
	for _, svc := range []*process{p.receivers[0], p.writer} {
		testenv.Eventually(t, 15*time.Second, func() error { // the series are read every 5s
			used, err := svc.metric("kohaku_stream_bytes")
			if err != nil {
				return err
			}
			limit, err := svc.metric("kohaku_stream_max_bytes")
			if err != nil {
				return err
			}
			// Full: no room left for one more report.
			if limit != maxBytes || limit-used > 64<<10 {
				return fmt.Errorf("%s: kohaku_stream_bytes %v of kohaku_stream_max_bytes %v, want within 64 KiB of %d", svc.Name(), used, limit, maxBytes)
			}
			filled = max(filled, used)
			return nil
		})
	}
	if age, err := p.writer.metric("kohaku_stream_oldest_unacked_age_seconds"); err != nil || age < 1 {
		t.Errorf("kohaku_stream_oldest_unacked_age_seconds on the writer with the database down: %v %v, want a second or more", age, err)
	}
	time.Sleep(2 * time.Second) // refused for a while

	p.allowDatabase()
	back := time.Now()
	for _, r := range p.receivers {
		r.waitReady(t, 30*time.Second)
	}
	ready := time.Since(back)
	testenv.Eventually(t, 10*time.Second, func() error {
		if n := run.rec.acceptedAfter(back); n < 50 {
			return fmt.Errorf("%d requests answered 204 since the database is back, want 50", n)
		}
		return nil
	})
	rec := run.stop()

	rec.only(t, http.StatusNoContent, http.StatusServiceUnavailable)
	refused := rec.statuses()[http.StatusServiceUnavailable]
	trimmed, _ := p.writer.metric("kohaku_writer_trimmed_messages_total")
	lost, _ := p.writer.metric("kohaku_writer_lost_messages_total")
	t.Logf("stream of %d bytes full %s after the database went down (%d bytes used), %d requests answered 503; receivers ready %s after it came back; the writer deleted %v written messages, lost %v",
		maxBytes, full.Sub(outage).Round(time.Millisecond), int64(filled), refused, ready.Round(time.Millisecond), trimmed, lost)
	if lost != 0 {
		t.Errorf("kohaku_writer_lost_messages_total = %v, want 0", lost)
	}
	if n := rec.acceptedBetween(outage, full); n < 100 {
		t.Errorf("%d requests answered 204 before the stream was full, want at least 100", n)
	}
	p.verify(rec.all(), 200)
}
