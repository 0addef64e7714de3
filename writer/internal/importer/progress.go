package importer

import (
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"kohaku/writer/internal/progress"
	"kohaku/writer/internal/store"
)

// counter counts an import's work for its progress lines, read by another goroutine.
type counter struct {
	start                         time.Time
	lines, reports, rows, newRows atomic.Int64
	rejected                      atomic.Int64
	read, total                   atomic.Int64 // input bytes read, and the size of all inputs
	unsized                       atomic.Bool  // an input's size is unknown (stdin, a pipe)
}

func (c *counter) add(res store.Result) {
	n := res.NewStatsRows()
	c.rows.Add(int64(n + res.Duplicates))
	c.newRows.Add(int64(n))
}

func (c *counter) stats() Stats {
	return Stats{Lines: int(c.lines.Load()), Reports: int(c.reports.Load()), Rows: int(c.rows.Load()),
		NewRows: int(c.newRows.Load()), Rejected: int(c.rejected.Load()), Elapsed: time.Since(c.start)}
}

// status is the import's progress: what was done, and the time left when all inputs are
// files, estimated from the share of their bytes read.
func (c *counter) status() progress.Status {
	s := c.stats().status()
	if read, total := c.read.Load(), c.total.Load(); !c.unsized.Load() && read > 0 && total > read {
		s.TimeLeft = time.Duration(float64(total-read) / float64(read) * float64(s.Elapsed))
	}
	return s
}

// Summary is the line that ends an import's output, shaped like its progress lines.
func (s Stats) Summary() string { return s.status().Summary() }

func (s Stats) status() progress.Status {
	return progress.Status{
		Command: "import",
		Counts: fmt.Sprintf("%d lines, %d reports, %d rows (%d already present), %d rejected",
			s.Lines, s.Reports, s.Rows, s.Rows-s.NewRows, s.Rejected),
		Done:       s.Lines,
		Unit:       "lines",
		Elapsed:    s.Elapsed,
		Left:       -1, // reports are counted as they are read: their number is unknown
		Unfinished: s.Unfinished,
	}
}

// lockedWriter serializes the lines that several goroutines write to one output.
type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) printf(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	fmt.Fprintf(l.w, format, args...)
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// countingReader counts the bytes read through it into n.
type countingReader struct {
	r io.Reader
	n *atomic.Int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n.Add(int64(n))
	return n, err
}
