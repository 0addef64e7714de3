package ingest

import (
	"log/slog"
	"sync"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
)

// losses finds the messages that left the stream before the writers stored them, which
// JetStream does past KOHAKU_STREAM_MAX_AGE whether they were written or not (and an
// operator may do by deleting or purging): it logs every range it finds once, at Warn,
// with its first and last stream sequence, and counts its messages. It looks in three
// places:
//
//   - At bind: messages above the consumer's ack floor and below the stream's first
//     sequence are gone without having been acknowledged. Some of them may have been
//     acknowledged out of order, above the floor, or be held by another running writer,
//     which will still write them: the count is at most that many too high.
//   - In every look at the stream (Observe): messages above the last one the consumer
//     delivered and below the stream's first sequence are gone undelivered. Exact.
//   - In the deliveries: when this writer is given two consecutive deliveries of the
//     consumer (consumer sequences n and n+1, or its first one right after bind), the stream
//     sequences between the two first deliveries were skipped by the consumer because they
//     were gone. Exact. Redeliveries come with lower sequences and are no gap, and the
//     consumer takes every subject of the stream, so no message is skipped for its subject.
//
// One loss escapes all three: a message delivered to a writer that stopped before it
// acknowledged it, and gone before JetStream delivered it again (within KOHAKU_ACK_WAIT),
// is terminated by JetStream itself, which moves the ack floor past it and says so only
// in a MSG_TERMINATED advisory. With the default MaxAge of days that takes an operator's
// delete or purge.
//
// Several writers share the consumer, and each checks the whole of it: one range may be
// logged and counted by each writer that finds it (sum over writers counts it that many
// times; take the max, or alert on any increase). Within one writer a sequence is counted
// once.
type losses struct {
	log  *slog.Logger
	lost prometheus.Counter

	mu       sync.Mutex
	counted  uint64 // every stream sequence up to it is delivered or counted as lost
	anchored bool   // lastC and lastS hold a delivery of the consumer
	lastC    uint64 // consumer sequence of the last delivery seen (this writer's, or at bind)
	lastS    uint64 // stream sequence of the last first delivery seen
}

// bound takes the consumer's state as bind found it, with the stream's state: it counts the
// unacknowledged messages that are gone, and the next delivery is checked against the
// consumer's last one.
func (l *losses) bound(ci *jetstream.ConsumerInfo, st jetstream.StreamState) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if ci.Delivered.Consumer < l.lastC {
		l.counted = 0 // a new consumer, of a new stream maybe: sequences start again
	}
	l.anchored, l.lastC, l.lastS = true, ci.Delivered.Consumer, ci.Delivered.Stream
	if st.FirstSeq > ci.AckFloor.Stream+1 {
		l.report(ci.AckFloor.Stream+1, st.FirstSeq-1, "stream starts past the ack floor")
	}
	l.counted = max(l.counted, ci.AckFloor.Stream)
}

// observed checks a look at the stream for messages gone before the consumer delivered
// them.
func (l *losses) observed(ci *jetstream.ConsumerInfo, st jetstream.StreamState) {
	l.mu.Lock()
	defer l.mu.Unlock()
	// The stream info was read before the consumer info: a message below the first
	// sequence then was gone before the consumer could deliver it.
	if st.FirstSeq > ci.Delivered.Stream+1 {
		l.report(ci.Delivered.Stream+1, st.FirstSeq-1, "stream starts past the last delivered")
	}
}

// delivered checks one delivery to this writer, in the order the writer got them.
func (l *losses) delivered(meta *jetstream.MsgMetadata) {
	c, s := meta.Sequence.Consumer, meta.Sequence.Stream
	l.mu.Lock()
	defer l.mu.Unlock()
	next := l.anchored && c == l.lastC+1 // no delivery to another writer in between
	l.anchored, l.lastC = true, c
	if meta.NumDelivered > 1 {
		return // a redelivery: its sequence was delivered before
	}
	if next && s > l.lastS+1 {
		l.report(l.lastS+1, s-1, "delivery skipped sequences")
	}
	l.lastS = s
	l.counted = max(l.counted, s)
}

// unbound forgets the consumer's last delivery: after the pull ended, another writer or
// a new consumer may deliver next.
func (l *losses) unbound() {
	l.mu.Lock()
	l.anchored = false
	l.mu.Unlock()
}

// report logs and counts the sequences from first to last that are not counted yet.
// l.mu is held.
func (l *losses) report(first, last uint64, found string) {
	first = max(first, l.counted+1)
	if first > last {
		return
	}
	n := last - first + 1
	l.counted = last
	l.lost.Add(float64(n))
	l.log.Warn("messages lost: gone from the stream before they were written; recover that period with kohaku-writer import of Sora's logs",
		"first_seq", first, "last_seq", last, "messages", n, "found", found)
}
