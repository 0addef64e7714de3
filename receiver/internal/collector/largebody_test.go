package collector_test

import (
	"fmt"
	"sync"
	"testing"

	"kohaku/pkg/sora"
)

// Multistream reports of about 300 KB, 8 at once on one HTTP/2 connection (more than twice
// the connection's flow-control window of 1 MiB), are all stored: the streams share the
// window, and each handler reads its body whole before it publishes.
func TestLargeBodiesShareOneHTTP2Connection(t *testing.T) {
	for _, m := range []mode{h2c, h2} {
		t.Run(string(m), func(t *testing.T) {
			r := startReceiver(t, m)
			const n = 8
			bodies := make([][]byte, n)
			for i := range bodies {
				bodies[i] = largeReport(t, i, 700) // about 300 KB
			}
			answers := make([]answer, n)
			var wg sync.WaitGroup
			for i := range bodies {
				wg.Go(func() { answers[i] = r.post(sora.TypeUserAgent, bodies[i]) })
			}
			wg.Wait()
			for i, a := range answers {
				if a.status != 204 {
					t.Fatalf("body %d: status %d, %s", i, a.status, a.body)
				}
				if a.proto != m.wantProto() {
					t.Fatalf("body %d went over HTTP/%d", i, a.proto)
				}
				r.wantStored(t, sora.TypeUserAgent, bodies[i])
			}
		})
	}
}

// largeReport returns a connection.user-agent report with elements inbound-rtp elements, as
// a multistream room's, its id made from n.
func largeReport(t testing.TB, n, elements int) []byte {
	return marshal(t, userAgent(), func(m map[string]any) {
		m["id"] = fmt.Sprintf("large-%020d", n)
		stats := make([]any, elements)
		for k := range stats {
			stats[k] = map[string]any{
				"id": fmt.Sprintf("IT01V%010d", k), "type": "inbound-rtp", "timestamp": 1700000000000.5,
				"kind": "video", "ssrc": 1000 + k, "mid": fmt.Sprint(k), "trackIdentifier": fmt.Sprintf("track-%032d", k),
				"packetsReceived": 123456, "bytesReceived": 123456789, "packetsLost": 12, "jitter": 0.004,
				"framesDecoded": 5000, "framesDropped": 3, "frameWidth": 1280, "frameHeight": 720,
				"totalDecodeTime": 12.5, "jitterBufferDelay": 45.25, "jitterBufferEmittedCount": 5000,
				"decoderImplementation": "libvpx", "codecId": "CIT01_96",
			}
		}
		m["stats"] = stats
	})
}
