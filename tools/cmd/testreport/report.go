package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"regexp"
	"slices"
	"sort"
	"strings"
)

// event is one line of `go test -json` (cmd/test2json's TestEvent, and the build events
// that go test adds).
type event struct {
	Action     string
	Package    string
	Test       string
	Output     string
	ImportPath string // of build-output events
}

// line is one line of output, with the test that printed it ("" for the package).
type line struct {
	test, text string
}

// pkgState is what a package printed so far, and how its tests ended.
type pkgState struct {
	lines   []line
	partial map[string]string // output of each test not yet ended by a newline
	failed  map[string]bool   // tests that failed
}

// skip is a skipped test and why.
type skip struct {
	pkg, test, message string
}

// report turns test events into go test's short output plus the skipped tests.
type report struct {
	w    io.Writer
	show *regexp.Regexp // output lines of passing tests to print; nil: none

	pkgs    map[string]*pkgState
	skips   []skip
	pass    int
	fail    int
	pkgFail bool
}

func newReport(w io.Writer, show *regexp.Regexp) *report {
	return &report{w: w, show: show, pkgs: map[string]*pkgState{}}
}

// read handles every line of r until its end.
func (r *report) read(in io.Reader) error {
	sc := bufio.NewScanner(in)
	sc.Buffer(nil, 16<<20) // a test may print long lines
	for sc.Scan() {
		b := sc.Bytes()
		var e event
		if len(b) == 0 || b[0] != '{' || json.Unmarshal(b, &e) != nil || e.Action == "" {
			fmt.Fprintln(r.w, string(b)) // the go command's own messages
			continue
		}
		r.handle(e)
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("read test events: %w", err)
	}
	return nil
}

func (r *report) state(pkg string) *pkgState {
	s := r.pkgs[pkg]
	if s == nil {
		s = &pkgState{partial: map[string]string{}, failed: map[string]bool{}}
		r.pkgs[pkg] = s
	}
	return s
}

// handle takes one event.
func (r *report) handle(e event) {
	switch e.Action {
	case "build-output":
		fmt.Fprint(r.w, e.Output)
	case "output":
		s := r.state(e.Package)
		text := s.partial[e.Test] + e.Output
		for {
			i := strings.IndexByte(text, '\n')
			if i < 0 {
				break
			}
			s.lines = append(s.lines, line{e.Test, text[:i]})
			text = text[i+1:]
		}
		s.partial[e.Test] = text
	case "pass", "fail", "skip":
		if e.Test == "" {
			r.endPackage(e)
			return
		}
		r.endTest(e)
	}
}

// endTest counts a test's result.
func (r *report) endTest(e event) {
	s := r.state(e.Package)
	switch e.Action {
	case "pass":
		r.pass++
	case "fail":
		r.fail++
		s.failed[e.Test] = true
	case "skip":
		r.skips = append(r.skips, skip{e.Package, e.Test, skipMessage(s.lines, e.Test)})
	}
}

// logLine starts a line that t.Log, t.Skip and the like print: "    file_test.go:12: ".
var logLine = regexp.MustCompile(`^\s+\S+\.go:\d+: `)

// skipMessage returns the last message that test logged, which t.Skip and t.Skipf log
// just before its "--- SKIP" line: where it was skipped and why, on one line.
func skipMessage(lines []line, test string) string {
	var msg []string
	for _, l := range lines {
		switch {
		case l.test != test, strings.HasPrefix(l.text, "=== "), strings.HasPrefix(l.text, "--- "):
		case logLine.MatchString(l.text):
			msg = []string{strings.TrimSpace(l.text)}
		case len(msg) > 0 && strings.TrimSpace(l.text) != "":
			msg = append(msg, strings.TrimSpace(l.text)) // a message of several lines
		}
	}
	return strings.Join(msg, " ")
}

// endPackage prints what go test without -v prints for the package: its summary line, and
// before it, when it failed, the output of its failed tests and its own.
func (r *report) endPackage(e event) {
	s := r.state(e.Package)
	for test, text := range s.partial {
		if text != "" {
			s.lines = append(s.lines, line{test, text})
		}
	}
	failed := e.Action == "fail"
	if failed {
		r.pkgFail = true
	}
	for _, l := range s.lines {
		if strings.HasPrefix(l.text, "=== ") { // RUN, PAUSE, CONT, NAME: -v framing
			continue
		}
		switch {
		case l.test == "" && l.text == "PASS":
		case l.test == "":
			fmt.Fprintln(r.w, l.text)
		case failed && s.failed[l.test]:
			fmt.Fprintln(r.w, l.text)
		case r.show != nil && r.show.MatchString(l.text):
			fmt.Fprintln(r.w, l.text)
		}
	}
	delete(r.pkgs, e.Package)
}

// finish prints the skipped tests and the counts.
func (r *report) finish() {
	// Packages that never ended (go test was killed) show what they printed.
	for _, pkg := range slices.Sorted(maps.Keys(r.pkgs)) {
		r.endPackage(event{Action: "fail", Package: pkg})
	}
	sort.SliceStable(r.skips, func(i, j int) bool {
		if r.skips[i].pkg != r.skips[j].pkg {
			return r.skips[i].pkg < r.skips[j].pkg
		}
		return r.skips[i].test < r.skips[j].test
	})
	if len(r.skips) > 0 {
		fmt.Fprintf(r.w, "\nskipped (%d):\n", len(r.skips))
		for _, s := range r.skips {
			fmt.Fprintf(r.w, "  %s %s: %s\n", s.pkg, s.test, s.message)
		}
	}
	fmt.Fprintf(r.w, "\ntests: %d passed, %d failed, %d skipped\n", r.pass, r.fail, len(r.skips))
}

// failed reports whether a test or a package failed.
func (r *report) failed() bool { return r.fail > 0 || r.pkgFail }
