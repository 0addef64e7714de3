package stream

import (
	"context"
	"fmt"
	"math"

	"github.com/nats-io/nats.go/jetstream"
)

// TrimSeq returns the sequence below which the stream of snap may be purged so that it
// holds at most percent of its MaxBytes again, or 0 when nothing is to be purged: the
// stream is within percent, has no byte limit, percent is 100 or more, or the consumer
// has acknowledged nothing that is still in the stream. The result is never above the
// consumer's ack floor + 1: a message that the writers have not acknowledged (written) is
// never purged, whatever the fill. How much to purge is estimated from the average message
// size, so a stream may need a few trims to come within percent.
func TrimSeq(snap *Snapshot, percent int) uint64 {
	if snap.Consumer == nil || percent >= 100 {
		return 0
	}
	cfg, st := snap.Info.Config, snap.Info.State
	limit := cfg.MaxBytes / 100 * int64(percent)
	floor := snap.Consumer.AckFloor.Stream
	if cfg.MaxBytes <= 0 || int64(st.Bytes) <= limit || st.Msgs == 0 || floor < st.FirstSeq {
		return 0
	}
	excess := float64(int64(st.Bytes) - limit)
	span := st.LastSeq - st.FirstSeq + 1
	n := uint64(math.Ceil(float64(span) * excess / float64(st.Bytes)))
	return min(st.FirstSeq+n, floor+1)
}

// Trim purges the messages that TrimSeq allows and returns how many sequences it removed
// (some may have been deleted before), 0 when it purged nothing. DiscardNew makes the
// stream refuse new messages when full; Trim is what makes room for them while the writers
// keep up, keeping the newest written messages within percent for replay.
func Trim(ctx context.Context, snap *Snapshot, percent int) (uint64, error) {
	seq := TrimSeq(snap, percent)
	if seq == 0 {
		return 0, nil
	}
	// Purge keeps the messages from seq on.
	if err := snap.Stream.Purge(ctx, jetstream.WithPurgeSequence(seq)); err != nil {
		return 0, fmt.Errorf("purge stream %s below %d: %w", Name, seq, err)
	}
	return seq - snap.Info.State.FirstSeq, nil
}
