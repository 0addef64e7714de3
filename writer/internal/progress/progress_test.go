package progress

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"
)

func TestLines(t *testing.T) {
	replay := Status{Command: "replay", Counts: "1200 messages, 25800 rows (0 already present), 0 dead letters", Done: 1200, Unit: "msg",
		Elapsed: 1200 * time.Millisecond, Left: 300}
	imp := Status{Command: "import", Counts: "208 lines, 8 reports, 208 rows (0 already present), 0 rejected", Done: 208, Unit: "lines",
		Elapsed: 50 * time.Millisecond, Left: -1, TimeLeft: 2100 * time.Millisecond}
	tests := []struct {
		name   string
		status Status
		want   string
		final  bool
	}{
		{"replay", replay, "replay: 1200 messages, 25800 rows (0 already present), 0 dead letters, 1000 msg/s, 300 left (about 1s)", false},
		{"replay at the start", Status{Command: "replay", Counts: "0 messages", Unit: "msg", Left: 1500},
			"replay: 0 messages, 0 msg/s, 1500 left", false},
		{"replay nearly done", func() Status { s := replay; s.Left = 1; return s }(),
			"replay: 1200 messages, 25800 rows (0 already present), 0 dead letters, 1000 msg/s, 1 left (about 1s)", false},
		{"import", imp, "import: 208 lines, 8 reports, 208 rows (0 already present), 0 rejected, 4160 lines/s, about 3s left", false},
		{"import from a pipe", func() Status { s := imp; s.TimeLeft = 0; return s }(),
			"import: 208 lines, 8 reports, 208 rows (0 already present), 0 rejected, 4160 lines/s", false},
		{"replay summary", func() Status { s := replay; s.Left = 0; return s }(),
			"replay: 1200 messages, 25800 rows (0 already present), 0 dead letters, 1000 msg/s, 1.2s in all", true},
		{"replay summary, interrupted", func() Status { s := replay; s.Unfinished = true; return s }(),
			"replay: 1200 messages, 25800 rows (0 already present), 0 dead letters, 1000 msg/s, 1.2s in all, not finished, 300 left", true},
		{"import summary", imp, "import: 208 lines, 8 reports, 208 rows (0 already present), 0 rejected, 4160 lines/s, 50ms in all", true},
		{"import summary, failed", func() Status { s := imp; s.Unfinished = true; return s }(),
			"import: 208 lines, 8 reports, 208 rows (0 already present), 0 rejected, 4160 lines/s, 50ms in all, not finished", true},
		{"nothing done in no time", Status{Command: "replay", Counts: "0 messages", Unit: "msg"},
			"replay: 0 messages, 0 msg/s, 0s in all", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := tt.status.Progress()
			if tt.final {
				got = tt.status.Summary()
			}
			if got != tt.want {
				t.Errorf("got  %q\nwant %q", got, tt.want)
			}
		})
	}
}

func TestReportWritesAtOnce(t *testing.T) {
	var buf bytes.Buffer
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // ended before it began: the first line is written all the same
	Report(ctx, &buf, time.Hour, func() Status { return Status{Command: "import", Counts: "0 lines", Unit: "lines", Left: -1} })
	if got, want := buf.String(), "import: 0 lines, 0 lines/s\n"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestReportRepeats(t *testing.T) {
	var buf bytes.Buffer
	ctx, cancel := context.WithCancel(context.Background())
	n := 0
	Report(ctx, &buf, time.Millisecond, func() Status {
		// Report calls it from this goroutine only. A tick may still come with the end:
		// 3 lines or 4.
		n++
		if n == 3 {

			cancel()
		}
		return Status{Command: "replay", Counts: "0 messages", Unit: "msg", Left: 7}
	})
	if lines := strings.Count(buf.String(), "replay: 0 messages, 0 msg/s, 7 left\n"); lines < 3 || lines > 4 {
		t.Errorf("%d lines, want 3 or 4:\n%s", lines, buf.String())
	}
}
