package store

import (
	"slices"
	"strings"
	"sync"
	"time"

	"kohaku/pkg/normalize"
)

// reportKey names a report as the tables key it: its connection (or Sora node) and its
// time as stored, in microseconds. Every row of the report has both in its natural key.
type reportKey struct {
	connection string
	node       bool // connection is a node name: a node.erlang-vm report
	micros     int64
}

// keyOf returns the report key of m, and false for a message without a connection's rows.
func keyOf(m Message) (reportKey, bool) {
	if m.Err != nil || m.Rows == nil || m.Rows.Connection == nil {
		return reportKey{}, false
	}
	c := m.Rows.Connection
	return reportKey{connection: c.ConnectionID, micros: c.Time.UnixMicro()}, true
}

// anyKeyOf returns the report key of m, a connection's or a node's, and false for a
// message without rows.
func anyKeyOf(m Message) (reportKey, bool) {
	if k, ok := keyOf(m); ok || m.Rows == nil {
		return k, ok
	}
	rows := m.Rows.Tables[normalize.TableErlangVM]
	if len(rows) == 0 {
		return reportKey{}, false
	}
	cols := normalize.Columns(normalize.TableErlangVM)
	name, _ := rows[0][slices.Index(cols, "node_name")].(string)
	at, ok := rows[0][slices.Index(cols, "time")].(time.Time)
	if !ok {
		return reportKey{}, false
	}
	return reportKey{connection: name, node: true, micros: at.UnixMicro()}, true
}

// recentSize is how many reports a Store remembers: some batches' worth, a few MiB.
const recentSize = 1 << 16

// recentReports remembers the last reports a Store stored, so that a report arriving
// again (a redelivery, or one sent twice under a microsecond with other content) is merged
// on its own instead of failing the COPY of its whole batch and sending all of it through
// the merge. It is only a hint: a report it forgot still fails the COPY, and the batch is
// merged then. It is safe for concurrent use.
type recentReports struct {
	mu   sync.Mutex
	set  map[reportKey]struct{}
	ring []reportKey // the keys in set, oldest at next once full
	next int
}

func newRecentReports(size int) *recentReports {
	return &recentReports{set: make(map[reportKey]struct{}, size), ring: make([]reportKey, 0, size)}
}

// seen returns, per message of msgs, whether its report was stored recently; nil when none
// was.
func (r *recentReports) seen(msgs []Message) []bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []bool
	for i, m := range msgs {
		k, ok := anyKeyOf(m)
		if !ok {
			continue
		}
		if _, hit := r.set[k]; hit {
			if out == nil {
				out = make([]bool, len(msgs))
			}
			out[i] = true
		}
	}
	return out
}

// add remembers the reports of msgs, forgetting the oldest beyond the size.
func (r *recentReports) add(msgs []Message) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, m := range msgs {
		k, ok := anyKeyOf(m)
		if !ok {
			continue
		}
		if _, hit := r.set[k]; hit {
			continue
		}
		k.connection = strings.Clone(k.connection) // not a hold on the body it came from
		if len(r.ring) < cap(r.ring) {
			r.ring = append(r.ring, k)
		} else {
			delete(r.set, r.ring[r.next])
			r.ring[r.next] = k
			r.next = (r.next + 1) % len(r.ring)
		}
		r.set[k] = struct{}{}
	}
}
