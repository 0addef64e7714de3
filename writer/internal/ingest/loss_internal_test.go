package ingest

import (
	"log/slog"
	"testing"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// TestDeliveriesThatSkipSequencesCountThemOnce pins the check of the deliveries: a first
// delivery that follows this writer's last one of the consumer (consumer sequence + 1) and
// skips stream sequences counts them as lost, once; a redelivery, or a delivery after one
// to another writer, tells nothing.
func TestDeliveriesThatSkipSequencesCountThemOnce(t *testing.T) {
	type delivery struct{ consumer, stream, n uint64 }
	tests := []struct {
		name       string
		deliveries []delivery // after binding at consumer 5, stream 10, ack floor 10
		want       float64
	}{
		{"consecutive without a gap", []delivery{{6, 11, 1}, {7, 12, 1}}, 0},
		{"the first after binding skips two", []delivery{{6, 13, 1}}, 2},
		{"a later one skips one", []delivery{{6, 11, 1}, {7, 13, 1}}, 1},
		{"a redelivery is no gap", []delivery{{6, 11, 1}, {7, 5, 2}, {8, 12, 1}}, 0},
		{"a delivery to another writer in between", []delivery{{7, 13, 1}, {8, 14, 1}}, 0},
		{"a range is counted once", []delivery{{6, 13, 1}, {7, 9, 2}, {8, 14, 1}}, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lost := prometheus.NewCounter(prometheus.CounterOpts{Name: "lost"})
			l := &losses{log: slog.New(slog.DiscardHandler), lost: lost}
			ci := &jetstream.ConsumerInfo{Delivered: jetstream.SequenceInfo{Consumer: 5, Stream: 10},
				AckFloor: jetstream.SequenceInfo{Consumer: 5, Stream: 10}}
			l.bound(ci, jetstream.StreamState{FirstSeq: 1, LastSeq: 20})
			for _, d := range tt.deliveries {
				l.delivered(&jetstream.MsgMetadata{Sequence: jetstream.SequencePair{Consumer: d.consumer, Stream: d.stream}, NumDelivered: d.n})
			}
			if got := testutil.ToFloat64(lost); got != tt.want {
				t.Errorf("lost %v, want %v", got, tt.want)
			}
		})
	}
}
