package logging

import (
	"bytes"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"
)

// logSome writes the lines that the tests look at: durations at the top level, in a group,
// in attributes added by With, and a logger of a group.
func logSome(log *slog.Logger) {
	log.Info("kohaku-writer running", "batch_wait", 200*time.Millisecond, "batch_size", 500)
	log.With("timeout", 30*time.Second).Warn("retrying", slog.Group("retry", "wait", 1500*time.Millisecond), "err", errors.New("boom"))
	log.WithGroup("flush").Info("done", "elapsed", 1234*time.Microsecond)
}

func TestJSON(t *testing.T) {
	var buf bytes.Buffer
	log, err := New(&buf, "kohaku-writer", "json", "info")
	if err != nil {
		t.Fatal(err)
	}
	logSome(log)
	log.Debug("below the level")

	want := []map[string]any{
		{"msg": "kohaku-writer running", "batch_wait": "200ms", "batch_size": float64(500)},
		{"msg": "retrying", "level": "WARN", "timeout": "30s", "retry": map[string]any{"wait": "1.5s"}, "err": "boom"},
		{"msg": "done", "flush": map[string]any{"elapsed": "1.234ms"}},
	}
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != len(want) {
		t.Fatalf("%d lines, want %d:\n%s", len(lines), len(want), buf.String())
	}
	for i, line := range lines {
		var got map[string]any
		if err := json.Unmarshal([]byte(line), &got); err != nil {
			t.Fatalf("line %d is not JSON: %v\n%s", i+1, err, line)
		}
		if got[ServiceKey] != "kohaku-writer" {
			t.Errorf("line %d: service %v, want kohaku-writer\n%s", i+1, got[ServiceKey], line)
		}
		for k, w := range want[i] {
			if g, _ := json.Marshal(got[k]); string(g) != mustJSON(t, w) {
				t.Errorf("line %d: %s = %s, want %s\n%s", i+1, k, g, mustJSON(t, w), line)
			}
		}
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestText(t *testing.T) {
	var buf bytes.Buffer
	log, err := New(&buf, "kohaku-receiver", "text", "info")
	if err != nil {
		t.Fatal(err)
	}
	logSome(log)

	// The time leads each line; what follows it is fixed. Not a terminal: no colors.
	want := []string{
		"INF kohaku-receiver: kohaku-writer running batch_wait=200ms batch_size=500",
		"WRN kohaku-receiver: retrying timeout=30s retry.wait=1.5s err=boom",
		"INF kohaku-receiver: done flush.elapsed=1.234ms",
	}
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != len(want) {
		t.Fatalf("%d lines, want %d:\n%s", len(lines), len(want), buf.String())
	}
	for i, line := range lines {
		stamp, rest, _ := strings.Cut(line, " ")
		if _, err := time.Parse(time.TimeOnly, stamp); err != nil {
			t.Errorf("line %d does not start with the time: %q", i+1, line)
		}
		if rest != want[i] {
			t.Errorf("line %d:\n got %q\nwant %q", i+1, rest, want[i])
		}
	}
}

func TestAutoIsJSONWhenNotATerminal(t *testing.T) {
	var buf bytes.Buffer
	log, err := New(&buf, "kohaku-writer", "auto", "debug")
	if err != nil {
		t.Fatal(err)
	}
	log.Debug("hello", "wait", time.Second)
	if got, want := buf.String(), `"msg":"hello","service":"kohaku-writer","wait":"1s"}`; !strings.HasSuffix(strings.TrimSpace(got), want) {
		t.Errorf("got %s, want it to end with %s", got, want)
	}
}

func TestNewRejects(t *testing.T) {
	tests := []struct {
		name, format, level, wantErr string
	}{
		{name: "unknown format", format: "xml", level: "info", wantErr: `log format "xml"`},
		{name: "unknown level", format: "json", level: "loud", wantErr: `log level "loud"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(&bytes.Buffer{}, "kohaku-writer", tt.format, tt.level)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("got %v, want an error with %q", err, tt.wantErr)
			}
		})
	}
}
