package ingest

import (
	"context"
	"errors"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"kohaku/pkg/normalize"
	"kohaku/writer/internal/store"
)

// errStop tells the collector's caller that accept saw the last message it wants.
var errStop = errors.New("ingest: last message reached")

// acceptFunc decides about a message as it arrives: keep it in the batch or not, and
// whether it is the last one wanted. nil keeps every message.
type acceptFunc func(jetstream.Msg) (keep, last bool)

// bounds limit one batch. A message that alone exceeds the bytes or the rows bound is a
// batch of its own: it is written all the same.
type bounds struct {
	messages int           // most messages
	bytes    int           // most body bytes
	rows     int           // most rows, all tables together
	wait     time.Duration // longest wait for more messages after the first
}

// bounds returns the batch bounds that o configures.
func (o Options) bounds() bounds {
	return bounds{messages: o.BatchSize, bytes: o.BatchMaxBytes, rows: o.BatchMaxRows, wait: o.BatchWait}
}

// mostRows is the most rows that a body of n bytes can normalize to: one per stats
// element, and an element takes at least three bytes ("{}" and a comma).
func mostRows(n int) int { return n/3 + 1 }

// collector turns the messages of an iterator into decoded batches within bounds. It
// decodes while it collects, a group of messages at a time, and only as many as the rows
// bound leaves room for even if each were all elements: the rows bound limits what a batch
// holds in memory, not only what one transaction writes, and a body of empty elements
// normalizes to about 90 times its size (README, "Operations").
type collector struct {
	it     jetstream.MessagesContext
	b      bounds
	accept acceptFunc
	// held is the message that was pulled last but did not fit in the batch collected
	// last: the first of the next. When decoded, it has at most the rows bound's rows.
	held  *heldMsg
	norm  normalize.Normalizer   // for the messages decoded one at a time
	norms []normalize.Normalizer // for the groups decoded in parallel, one per worker
}

// heldMsg is a message that waits for the next batch.
type heldMsg struct {
	msg     jetstream.Msg
	decoded bool
	item    store.Message // when decoded
	again   bool          // when decoded
	last    bool          // accept said it is the last one wanted
}

// batch is a batch being collected: decoded messages, and pending ones, which are in the
// batch but not decoded yet.
type batch struct {
	decodedBatch
	pending []jetstream.Msg
	maybe   int // the most rows that pending can add
}

func (b *batch) len() int { return len(b.msgs) + len(b.pending) }

// push adds m to the batch, undecoded.
func (b *batch) push(m jetstream.Msg) {
	b.pending = append(b.pending, m)
	b.maybe += mostRows(len(m.Data()))
	b.bytes += len(m.Data())
}

// add adds m, decoded to item, to the batch.
func (b *batch) add(m jetstream.Msg, item store.Message, again bool) {
	b.msgs = append(b.msgs, m)
	b.items = append(b.items, item)
	b.bytes += len(m.Data())
	b.rows += rowCount(item)
	if again {
		b.again++
	}
}

// decodePending decodes the pending messages, in parallel with norms, and adds them to the
// batch.
func (b *batch) decodePending(norms *[]normalize.Normalizer) {
	if len(b.pending) == 0 {
		return
	}
	items, again := decode(b.pending, norms)
	b.msgs = append(b.msgs, b.pending...)
	b.items = append(b.items, items...)
	for _, item := range items {
		b.rows += rowCount(item)
	}
	b.again += again
	b.pending, b.maybe = b.pending[:0], 0
}

func rowCount(m store.Message) int {
	if m.Rows == nil {
		return 0
	}
	return m.Rows.Count
}

// next returns the next batch: it waits for a first message as long as ctx allows, then
// takes more until a bound is reached or the bounds' wait has passed since the first. With
// the batch, decoded, it returns ctx's error when ctx ended, errStop when accept saw the
// last message, or the iterator's error; the messages collected are valid in every case.
func (c *collector) next(ctx context.Context) (*decodedBatch, error) {
	b := &batch{}
	if h := c.held; h != nil {
		c.held = nil
		if h.decoded {
			b.add(h.msg, h.item, h.again)
		} else {
			b.push(h.msg)
		}
		if h.last {
			b.decodePending(&c.norms)
			return &b.decodedBatch, errStop
		}
	}
	nctx := ctx
	if b.len() > 0 {
		var cancel context.CancelFunc
		nctx, cancel = context.WithTimeout(ctx, c.b.wait)
		defer cancel()
	}
	for b.len() < c.b.messages {
		m, err := c.it.Next(jetstream.NextContext(nctx))
		if err != nil {
			b.decodePending(&c.norms)
			if ctx.Err() != nil {
				return &b.decodedBatch, ctx.Err()
			}
			if nctx != ctx && errors.Is(err, context.DeadlineExceeded) {
				return &b.decodedBatch, nil // the batch's wait is over
			}
			return &b.decodedBatch, err
		}
		keep, last := true, false
		if c.accept != nil {
			keep, last = c.accept(m)
		}
		if keep && !c.take(b, m, last) {
			b.decodePending(&c.norms)
			return &b.decodedBatch, nil // m waits in held for the next batch
		}
		if last {
			b.decodePending(&c.norms)
			return &b.decodedBatch, errStop
		}
		if b.len() == 1 && nctx == ctx {
			// The wait starts with the first message: an idle stream costs nothing.
			var cancel context.CancelFunc
			nctx, cancel = context.WithTimeout(ctx, c.b.wait)
			defer cancel()
		}
	}
	b.decodePending(&c.norms)
	return &b.decodedBatch, nil
}

// take adds m to b, or holds it for the next batch and returns false when b is not empty
// and m would take it beyond the bytes or the rows bound. Before the rows bound is
// reached by what pending might hold, the pending messages are decoded; m itself is
// decoded alone when even their real rows leave too little room for it.
func (c *collector) take(b *batch, m jetstream.Msg, last bool) bool {
	size := len(m.Data())
	if b.len() == 0 {
		b.push(m)
		return true
	}
	if b.bytes+size > c.b.bytes {
		c.held = &heldMsg{msg: m, last: last}
		return false
	}
	most := mostRows(size)
	if b.rows+b.maybe+most <= c.b.rows {
		b.push(m)
		return true
	}
	b.decodePending(&c.norms)
	if b.rows+most <= c.b.rows {
		b.push(m)
		return true
	}
	item, again := decodeOne(&c.norm, m)
	switch n := rowCount(item); {
	case b.rows+n <= c.b.rows:
	case n <= c.b.rows:
		c.held = &heldMsg{msg: m, decoded: true, item: item, again: again, last: last}
		return false
	default:
		// More rows than a batch: held undecoded, and decoded again as a batch of its
		// own, so that the collector holds no more than a batch's rows while it waits to
		// hand over the batch before. Only a body the receiver would now refuse has that
		// many elements (KOHAKU_MAX_ELEMENTS is below KOHAKU_BATCH_MAX_ROWS).
		c.held = &heldMsg{msg: m, last: last}
		return false
	}
	b.add(m, item, again)
	return true
}
