package main

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// tracker follows each request of the end to end phase from its due time to its row.
type tracker struct {
	due   []time.Time   // request i's due time, also its envelope timestamp
	index map[int64]int // due time in µs since the epoch -> i

	mu          sync.Mutex
	nSent       int             // requests 0..nSent-1 were handed to a worker
	status      []int           // 0 until answered
	took        []time.Duration // POST to answer
	seen        []time.Time     // when its row was first seen committed
	oldest      int             // every request before it was seen or failed
	lastProblem string
}

func newTracker(start time.Time, interval time.Duration, n int) *tracker {
	t := &tracker{due: make([]time.Time, n), index: make(map[int64]int, n),
		status: make([]int, n), took: make([]time.Duration, n), seen: make([]time.Time, n)}
	for i := range n {
		// Truncating keeps the due times distinct as long as interval is at least 1 µs.
		t.due[i] = start.Add(time.Duration(i) * interval).Truncate(time.Microsecond)
		t.index[t.due[i].UnixMicro()] = i
	}
	return t
}

func (t *tracker) sent(i int) {
	t.mu.Lock()
	t.nSent = i + 1
	t.mu.Unlock()
}

func (t *tracker) answered(i int, a answer) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.took[i] = a.took
	switch {
	case a.err != nil:
		t.status[i] = -1
		t.lastProblem = a.err.Error()
	default:
		t.status[i] = a.status
		if a.status != http.StatusNoContent {
			t.lastProblem = fmt.Sprintf("status %d", a.status)
		}
	}
}

// window returns the due times between which unseen rows may be, and false when every
// request sent so far is accounted for.
func (t *tracker) window() (time.Time, time.Time, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for t.oldest < t.nSent && (!t.seen[t.oldest].IsZero() || t.failed(t.oldest)) {
		t.oldest++
	}
	if t.oldest >= t.nSent {
		return time.Time{}, time.Time{}, false
	}
	return t.due[t.oldest], t.due[t.nSent-1], true
}

func (t *tracker) failed(i int) bool { return t.status[i] != 0 && t.status[i] != http.StatusNoContent }

func (t *tracker) allSeen() bool {
	_, _, open := t.window()
	t.mu.Lock()
	defer t.mu.Unlock()
	return !open && t.nSent == len(t.due)
}

// poll asks the database for new rows every every until ctx ends.
func (t *tracker) poll(ctx context.Context, db *pgxpool.Pool, table string, every time.Duration) error {
	q := "SELECT time FROM " + pgx.Identifier{table}.Sanitize() + " WHERE time BETWEEN $1 AND $2"
	tick := time.NewTicker(every)
	defer tick.Stop()
	var times []time.Time
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
		lo, hi, open := t.window()
		if !open {
			continue
		}
		rows, err := db.Query(ctx, q, lo, hi)
		if err != nil {
			return fmt.Errorf("poll %s: %w", table, err)
		}
		times = times[:0]
		for rows.Next() {
			var v time.Time
			if err := rows.Scan(&v); err != nil {
				rows.Close()
				return fmt.Errorf("poll %s: %w", table, err)
			}
			times = append(times, v)
		}
		if err := rows.Err(); err != nil {
			return fmt.Errorf("poll %s: %w", table, err)
		}
		now := time.Now()
		t.mu.Lock()
		for _, v := range times {
			if i, ok := t.index[v.UnixMicro()]; ok && t.seen[i].IsZero() {
				t.seen[i] = now
			}
		}
		t.mu.Unlock()
	}
}

// summarize puts the figures into e.
func (t *tracker) summarize(e *endToEnd) {
	t.mu.Lock()
	defer t.mu.Unlock()
	var lat, answers []float64
	for i := range t.nSent {
		e.Sent++
		switch {
		case t.status[i] == http.StatusNoContent:
			e.Answered++
			answers = append(answers, ms(t.took[i]))
			if t.seen[i].IsZero() {
				e.Missing++
				continue
			}
			e.Committed++
			lat = append(lat, ms(t.seen[i].Sub(t.due[i])))
		default:
			e.Failed++
		}
	}
	if n := len(lat); n >= 4 {
		// Rising latency means the rate was more than the pipeline sustains.
		e.FirstQuarterP50ms = percentile(slices.Clone(lat[:n/4]), 0.5)
		e.LastQuarterP50ms = percentile(slices.Clone(lat[n-n/4:]), 0.5)
	}
	e.P50ms, e.P99ms, e.MaxMs = percentile(lat, 0.5), percentile(lat, 0.99), percentile(lat, 1)
	e.HTTPP50ms, e.HTTPP99ms = percentile(answers, 0.5), percentile(answers, 0.99)
}
