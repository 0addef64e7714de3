// Package progress writes what the writer's long commands, replay and import, tell the
// person running them: a progress line every second while they work (when stderr is a
// terminal) and one summary line at the end (always). Both commands' lines have one shape,
// plain text rather than log lines, which stay in the log:
//
//	replay: 1200 messages, 25800 rows (0 already present), 0 dead letters, 950 msg/s, 300 left (about 1s)
//	replay: 1500 messages, 32250 rows (0 already present), 0 dead letters, 940 msg/s, 1.596s in all
//	import: 208 lines, 8 reports, 208 rows (0 already present), 0 rejected, 4100 lines/s, about 3s left
//	import: 416 lines, 16 reports, 416 rows (0 already present), 0 rejected, 4000 lines/s, 104ms in all
package progress

import (
	"context"
	"fmt"
	"io"
	"time"
)

// Status is what a command has done so far.
type Status struct {
	Command string        // "replay" or "import": each line starts with it
	Counts  string        // what was done, such as "1200 messages, 25800 rows (0 already present)"
	Done    int           // units done, for the rate
	Unit    string        // the units of the rate: "msg", "lines"
	Elapsed time.Duration // since the command started
	// Left is how many units are still to do, negative when unknown; the time left is
	// then estimated from the rate.
	Left int
	// TimeLeft, when Left is unknown, is the time left estimated otherwise (from the
	// share of the input read), 0 when unknown.
	TimeLeft time.Duration
	// Unfinished marks the summary of a command that stopped before the end of its work.
	Unfinished bool
}

func (s Status) rate() float64 {
	if s.Elapsed <= 0 {
		return 0
	}
	return float64(s.Done) / s.Elapsed.Seconds()
}

// Progress is s as a progress line: what was done, the rate, and what is left.
func (s Status) Progress() string {
	rate := s.rate()
	line := fmt.Sprintf("%s: %s, %.0f %s/s", s.Command, s.Counts, rate, s.Unit)
	switch {
	case s.Left >= 0 && rate > 0:
		line += fmt.Sprintf(", %d left (about %s)", s.Left, roundUp(time.Duration(float64(s.Left)/rate*float64(time.Second))))
	case s.Left >= 0:
		line += fmt.Sprintf(", %d left", s.Left)
	case s.TimeLeft > 0:
		line += fmt.Sprintf(", about %s left", roundUp(s.TimeLeft))
	}
	return line
}

// Summary is s as the line that ends a command's output: what was done, the rate, and
// the time it took.
func (s Status) Summary() string {
	line := fmt.Sprintf("%s: %s, %.0f %s/s, %s in all", s.Command, s.Counts, s.rate(), s.Unit, s.Elapsed.Round(time.Millisecond))
	if s.Unfinished {
		line += ", not finished"
		if s.Left > 0 {
			line += fmt.Sprintf(", %d left", s.Left)
		}
	}
	return line
}

// roundUp rounds d up to whole seconds: "about 0s" left would be wrong while work remains.
func roundUp(d time.Duration) time.Duration {
	return (d + time.Second - 1).Truncate(time.Second)
}

// Report writes status's progress line to w at once, so that the person waiting sees
// what there is to do, then every interval until ctx ends.
func Report(ctx context.Context, w io.Writer, every time.Duration, status func() Status) {
	fmt.Fprintln(w, status().Progress())
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			fmt.Fprintln(w, status().Progress())
		}
	}
}
