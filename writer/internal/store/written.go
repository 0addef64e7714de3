package store

import (
	"sync"
	"time"
)

// written is the range of report times that a Store has stored since it was last taken:
// what an analysis of the stored rows has to look at, however late the rows arrived.
type written struct {
	mu       sync.Mutex
	from, to time.Time
	any      bool
}

// add widens the range to the reports of msgs.
func (w *written) add(msgs []Message) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, m := range msgs {
		k, ok := anyKeyOf(m)
		if !ok {
			continue
		}
		at := time.UnixMicro(k.micros)
		if !w.any || at.Before(w.from) {
			w.from = at
		}
		if !w.any || at.After(w.to) {
			w.to = at
		}
		w.any = true
	}
}

// TakeWritten returns the earliest and latest report time of the messages that Write stored
// since the last call, and false when it stored none; the range starts empty again. A
// writer analyzes that range, so that rows written long after their time (a backlog
// drained after an outage) get their issues and scores too.
func (s *Store) TakeWritten() (from, to time.Time, ok bool) {
	w := &s.written
	w.mu.Lock()
	defer w.mu.Unlock()
	from, to, ok = w.from, w.to, w.any
	w.from, w.to, w.any = time.Time{}, time.Time{}, false
	return from, to, ok
}
