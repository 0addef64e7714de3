package reliability

import (
	"context"
	"net/http"
	"testing"
	"time"

	"kohaku/pkg/stream"
)

func TestSenderRetriesStoreOnce(t *testing.T) {
	// A duplicate window shorter than the longest retry delay: retries within it are
	// dropped by JetStream, the later ones reach the writer twice and meet the natural keys.
	p := newPipeline(t, setup{receivers: 2, duplicates: time.Second})
	l := steady(6)
	l.twice, l.retryDelay = true, 2*time.Second
	run := l.start(t, p.collectorURLs())
	time.Sleep(3 * time.Second)
	rec := run.stop()

	rec.only(t, http.StatusNoContent, http.StatusServiceUnavailable) // a duplicate is answered 204 too
	bodies := map[string]bool{}
	for _, e := range rec.all() {
		bodies[stream.MsgID(e.exporterType, e.body)] = true
	}
	p.verify(rec.all(), 300)

	// Both defences were used: some retries were dropped by the stream, some stored twice.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := p.js.Stream(ctx, stream.Name)
	if err != nil {
		t.Fatal(err)
	}
	msgs := int(s.CachedInfo().State.Msgs)
	t.Logf("%d distinct bodies, each sent twice: %d messages in the stream", len(bodies), msgs)
	if msgs <= len(bodies) || msgs >= 2*len(bodies) {
		t.Errorf("%d messages in the stream for %d bodies sent twice: want some retries deduplicated by the stream and some not",
			msgs, len(bodies))
	}
}
