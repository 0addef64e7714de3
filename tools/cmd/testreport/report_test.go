package main

import (
	"encoding/json"
	"regexp"
	"strings"
	"testing"
)

// events encodes test events as go test -json prints them, one a line.
func events(t *testing.T, evs ...event) string {
	t.Helper()
	var b strings.Builder
	for _, e := range evs {
		j, err := json.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		b.Write(j)
		b.WriteByte('\n')
	}
	return b.String()
}

func out(pkg, test, text string) event {
	return event{Action: "output", Package: pkg, Test: test, Output: text}
}
func end(action, pkg, test string) event {
	return event{Action: action, Package: pkg, Test: test}
}

func TestReportIsShortAndListsSkips(t *testing.T) {
	tests := []struct {
		name       string
		input      func(t *testing.T) string
		show       string
		want       string
		wantFailed bool
	}{
		{
			name: "passing package prints its summary line only",
			input: func(t *testing.T) string {
				return events(t,
					out("p", "TestA", "=== RUN   TestA\n"), out("p", "TestA", "    a_test.go:3: chatter\n"),
					out("p", "TestA", "--- PASS: TestA (0.00s)\n"), end("pass", "p", "TestA"),
					out("p", "", "PASS\n"), out("p", "", "ok  \tp\t0.1s\n"), end("pass", "p", ""))
			},
			want: "ok  \tp\t0.1s\n\ntests: 1 passed, 0 failed, 0 skipped\n",
		},
		{
			name: "failed test shows its output, passing tests do not",
			input: func(t *testing.T) string {
				return events(t,
					out("p", "TestA", "=== RUN   TestA\n"), out("p", "TestA", "--- PASS: TestA (0.00s)\n"), end("pass", "p", "TestA"),
					out("p", "TestB", "=== RUN   TestB\n"), out("p", "TestB", "    b_test.go:5: bo"), out("p", "TestB", "om\n"),
					out("p", "TestB", "--- FAIL: TestB (0.00s)\n"), end("fail", "p", "TestB"),
					out("p", "", "FAIL\n"), out("p", "", "FAIL\tp\t0.1s\n"), end("fail", "p", ""))
			},
			want:       "    b_test.go:5: boom\n--- FAIL: TestB (0.00s)\nFAIL\nFAIL\tp\t0.1s\n\ntests: 1 passed, 1 failed, 0 skipped\n",
			wantFailed: true,
		},
		{
			name: "skipped tests are listed at the end with their last message",
			input: func(t *testing.T) string {
				return events(t,
					out("q", "TestS", "=== RUN   TestS\n"), out("q", "TestS", "    s_test.go:3: first\n"),
					out("q", "TestS", "    s_test.go:4: haproxy unavailable, test not run:\n"), out("q", "TestS", "        exec: not found\n"),
					out("q", "TestS", "--- SKIP: TestS (0.00s)\n"), end("skip", "q", "TestS"),
					out("q", "", "ok  \tq\t0.1s\n"), end("pass", "q", ""),
					out("p", "TestT/sub", "    t_test.go:9: no TimescaleDB\n"), out("p", "TestT/sub", "--- SKIP: TestT/sub (0.00s)\n"),
					end("skip", "p", "TestT/sub"), end("pass", "p", "TestT"),
					out("p", "", "ok  \tp\t0.1s\n"), end("pass", "p", ""),
					out("r", "", "?   \tr\t[no test files]\n"), end("skip", "r", ""))
			},
			want: "ok  \tq\t0.1s\nok  \tp\t0.1s\n?   \tr\t[no test files]\n\nskipped (2):\n" +
				"  p TestT/sub: t_test.go:9: no TimescaleDB\n" +
				"  q TestS: s_test.go:4: haproxy unavailable, test not run: exec: not found\n" +
				"\ntests: 1 passed, 0 failed, 2 skipped\n",
		},
		{
			name: "show prints the matching lines of passing tests",
			show: `^Test[^ ]*: summary:`,
			input: func(t *testing.T) string {
				return events(t,
					out("rel", "TestOutage", "TestOutage: summary: lost=0\n"), out("rel", "TestOutage", "    o_test.go:1: detail\n"),
					end("pass", "rel", "TestOutage"), out("rel", "", "ok  \trel\t9s\n"), end("pass", "rel", ""))
			},
			want: "TestOutage: summary: lost=0\nok  \trel\t9s\n\ntests: 1 passed, 0 failed, 0 skipped\n",
		},
		{
			name: "the go command's own lines and build errors pass through",
			input: func(t *testing.T) string {
				return "go: downloading example.com/m v1.0.0\n" + events(t,
					event{Action: "build-output", ImportPath: "p [p.test]", Output: "# p\n./a.go:1: syntax error\n"},
					out("p", "", "FAIL\tp [build failed]\n"), end("fail", "p", ""))
			},
			want:       "go: downloading example.com/m v1.0.0\n# p\n./a.go:1: syntax error\nFAIL\tp [build failed]\n\ntests: 0 passed, 0 failed, 0 skipped\n",
			wantFailed: true,
		},
		{
			name: "a package that never ended shows its output",
			input: func(t *testing.T) string {
				return events(t, out("p", "TestHang", "=== RUN   TestHang\n"), out("p", "", "panic: test timed out after 1s\n"))
			},
			want:       "panic: test timed out after 1s\n\ntests: 0 passed, 0 failed, 0 skipped\n",
			wantFailed: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var show *regexp.Regexp
			if tt.show != "" {
				show = regexp.MustCompile(tt.show)
			}
			var got strings.Builder
			r := newReport(&got, show)
			if err := r.read(strings.NewReader(tt.input(t))); err != nil {
				t.Fatal(err)
			}
			r.finish()
			if got.String() != tt.want {
				t.Errorf("output:\n%s\nwant:\n%s", got.String(), tt.want)
			}
			if r.failed() != tt.wantFailed {
				t.Errorf("failed() = %v, want %v", r.failed(), tt.wantFailed)
			}
		})
	}
}
