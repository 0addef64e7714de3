package collector_test

import (
	"bytes"
	"fmt"
	"net/http"
	"testing"
	"time"

	"kohaku/pkg/stream"
	"kohaku/testsupport/testenv"
)

// TestSystemNATS runs the receiver against the machine's NATS (a 2.9 server on
// 127.0.0.1:4222), which differs from the embedded one in version and in being shared.
func TestSystemNATS(t *testing.T) {
	url := testenv.SystemNATS(t)
	r := startReceiver(t, h2c, func(s *setup) { s.natsURL = url })
	if err := r.h.Ready(t.Context()); err != nil {
		t.Fatalf("not ready against the system NATS: %v", err)
	}
	for _, fx := range allFixtures(t) {
		// A body of its own, so that a message left by an earlier run is no duplicate.
		body := uniqueBody(t, fx.Body, int(time.Now().UnixNano()%1e12))
		a := r.post(fx.ExporterType, body)
		if a.status != http.StatusNoContent || a.proto != 2 {
			t.Fatalf("%s: got %d over HTTP/%d %s, want 204 over HTTP/2", fx.Name, a.status, a.proto, a.body)
		}
		id := stream.MsgID(fx.ExporterType, body)
		msg := r.find(id)
		if msg == nil {
			t.Fatalf("%s: message %s not in the stream after 204", fx.Name, id)
		}
		if !bytes.Equal(msg.Data, body) || msg.Header.Get(stream.HeaderExporterType) != fx.ExporterType {
			t.Errorf("%s: stored message differs: %s", fx.Name, fmt.Sprint(msg.Header))
		}
	}
}
