package importer

import (
	"context"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"kohaku/pkg/normalize"
	"kohaku/writer/internal/store"
)

// progress counts an import's work for its progress line, read by another goroutine.
type progress struct {
	start                         time.Time
	lines, reports, rows, newRows atomic.Int64
	rejected                      atomic.Int64
	read, total                   atomic.Int64 // input bytes read, and the size of all inputs
	unsized                       atomic.Bool  // an input's size is unknown (stdin, a pipe)
}

func (p *progress) add(res store.Result) {
	n := 0
	for table, v := range res.Inserted {
		if table != normalize.TableConnection { // upserted, not a stats row
			n += v
		}
	}
	p.rows.Add(int64(n + res.Duplicates))
	p.newRows.Add(int64(n))
}

func (p *progress) stats() Stats {
	return Stats{Lines: int(p.lines.Load()), Reports: int(p.reports.Load()), Rows: int(p.rows.Load()),
		NewRows: int(p.newRows.Load()), Rejected: int(p.rejected.Load()), Elapsed: time.Since(p.start)}
}

func (p *progress) report(ctx context.Context, w io.Writer, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			fmt.Fprintln(w, p.line())
		}
	}
}

// line is a progress line: lines, reports and rows done, rate, and the time left when all
// inputs are files, estimated from the share of their bytes read.
func (p *progress) line() string {
	s := p.stats()
	rate := float64(s.Lines) / s.Elapsed.Seconds()
	out := fmt.Sprintf("import: %d lines, %d reports, %d rows (%d already present), %d rejected, %.0f lines/s",
		s.Lines, s.Reports, s.Rows, s.Rows-s.NewRows, s.Rejected, rate)
	if read, total := p.read.Load(), p.total.Load(); !p.unsized.Load() && read > 0 && total > read {
		left := time.Duration(float64(total-read) / float64(read) * float64(s.Elapsed))
		out += fmt.Sprintf(", about %s left", left.Round(time.Second))
	}
	return out
}

// Summary is the line that ends an import's output, like the progress lines: what it did.
func (s Stats) Summary() string {
	return fmt.Sprintf("import: %d lines, %d reports, %d rows (%d already present), %d rejected, %.0f lines/s, %s in all",
		s.Lines, s.Reports, s.Rows, s.Rows-s.NewRows, s.Rejected, float64(s.Lines)/s.Elapsed.Seconds(), s.Elapsed.Round(time.Millisecond))
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
