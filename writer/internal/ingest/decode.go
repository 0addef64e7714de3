package ingest

import (
	"fmt"
	"runtime"
	"strings"
	"sync"

	"github.com/nats-io/nats.go/jetstream"

	"kohaku/pkg/normalize"
	"kohaku/pkg/stream"
	"kohaku/writer/internal/store"
)

// decode turns msgs into store messages, normalizing the bodies in parallel: normalizing
// is the writer's CPU work, and the collector's groups of bodies spread well over the
// cores. It leaves one core free: decode runs while the previous batch is copied, and the
// COPY needs the writing goroutine and, on a single machine, the database's backend to run
// without waiting; on two cores the writer drained about 10 % faster so (kohaku-bench).
// It also returns how many of msgs JetStream delivered more than once. The workers use
// the Normalizers of norms, made as needed and kept for the next group: a Normalizer's
// working memory serves from one body to the next, and a group may be a single body.
func decode(msgs []jetstream.Msg, norms *[]normalize.Normalizer) ([]store.Message, int) {
	out := make([]store.Message, len(msgs))
	again := make([]bool, len(msgs))
	// Two bodies a worker at least: a group can be a handful of large bodies, and a
	// goroutine costs a microsecond against a body's tens of microseconds or more.
	workers := min(max(1, runtime.GOMAXPROCS(0)-1), (len(msgs)+1)/2)
	if len(*norms) < workers {
		*norms = make([]normalize.Normalizer, workers)
	}
	var wg sync.WaitGroup
	for w := range workers {
		norm := &(*norms)[w]
		wg.Go(func() {
			for i := w; i < len(msgs); i += workers {
				out[i], again[i] = decodeOne(norm, msgs[i])
			}
		})
	}
	wg.Wait()
	n := 0
	for _, a := range again {
		if a {
			n++
		}
	}
	return out, n
}

// decodeOne normalizes msg's body with norm; any error of normalize.Message is final, the
// body being all there is to it. It also tells whether msg is a redelivery.
func decodeOne(norm *normalize.Normalizer, msg jetstream.Msg) (store.Message, bool) {
	m := store.Message{Subject: msg.Subject(), Header: msg.Headers(), Body: msg.Data(), ExporterType: exporterType(msg)}
	meta, err := msg.Metadata()
	if err != nil {
		m.Err = fmt.Errorf("read message metadata: %w", err)
		return m, false
	}
	m.Seq = meta.Sequence.Stream
	m.Rows, m.Err = norm.Message(m.ExporterType, m.Body)
	return m, meta.NumDelivered > 1
}

// exporterType is the message type of msg, of either feed: its header, or else its
// subject's last part.
func exporterType(msg jetstream.Msg) string {
	if t := msg.Headers().Get(stream.HeaderExporterType); t != "" {
		return t
	}
	return strings.TrimPrefix(msg.Subject(), stream.SubjectPrefix)
}
