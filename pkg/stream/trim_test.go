package stream_test

import (
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"kohaku/pkg/stream"
)

func TestTrimSeq(t *testing.T) {
	// snap is a stream of 100 messages of 1000 bytes, 1 to 100, limited to maxBytes, whose
	// consumer acknowledged up to floor (no consumer when floor < 0).
	snap := func(maxBytes int64, floor int) *stream.Snapshot {
		s := &stream.Snapshot{Info: &jetstream.StreamInfo{
			Config: jetstream.StreamConfig{MaxBytes: maxBytes},
			State:  jetstream.StreamState{Msgs: 100, Bytes: 100_000, FirstSeq: 1, LastSeq: 100},
		}}
		if floor >= 0 {
			s.Consumer = &jetstream.ConsumerInfo{AckFloor: jetstream.SequenceInfo{Stream: uint64(floor)}}
		}
		return s
	}
	for _, tc := range []struct {
		name    string
		snap    *stream.Snapshot
		percent int
		want    uint64
	}{
		{name: "within the percentage", snap: snap(200_000, 100), percent: 50},
		{name: "over it, all written: down to it", snap: snap(100_000, 100), percent: 50, want: 51},
		{name: "over it, little written: only what is written", snap: snap(100_000, 10), percent: 50, want: 11},
		{name: "nothing written", snap: snap(100_000, 0), percent: 50},
		{name: "no consumer", snap: snap(100_000, -1), percent: 50},
		{name: "100 percent never trims", snap: snap(100_000, 100), percent: 100},
		{name: "no byte limit", snap: snap(-1, 100), percent: 50},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := stream.TrimSeq(tc.snap, tc.percent); got != tc.want {
				t.Errorf("TrimSeq = %d, want %d", got, tc.want)
			}
		})
	}
}

// TestTrimKeepsWhatIsNotAcknowledged trims a nearly full stream down to nothing: only the
// messages the consumer acknowledged go.
func TestTrimKeepsWhatIsNotAcknowledged(t *testing.T) {
	js := jetStream(t)
	s, err := stream.Ensure(ctxFor(t), js, smallConfig(100<<10))
	if err != nil {
		t.Fatal(err)
	}
	publish(t, js, 20, 4<<10)
	c := writersConsumer(t, js)
	ackUpTo(t, c, 20, 5)
	ci, err := c.Info(ctxFor(t))
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctxFor(t))
	if err != nil {
		t.Fatal(err)
	}
	n, err := stream.Trim(ctxFor(t), &stream.Snapshot{Stream: s, Info: info, Consumer: ci}, 1)
	if err != nil {
		t.Fatal(err)
	}
	if info, err = s.Info(ctxFor(t)); err != nil {
		t.Fatal(err)
	}
	if n != 5 || info.State.FirstSeq != 6 || info.State.Msgs != 15 {
		t.Errorf("Trim removed %d; the stream holds %d messages from %d: want 5 removed, 15 from 6", n, info.State.Msgs, info.State.FirstSeq)
	}
}
