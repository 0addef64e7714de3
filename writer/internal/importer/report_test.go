package importer

import (
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"testing/iotest"

	"kohaku/testsupport/fixtures"
)

// logLines returns the lines of the fixture rtc_stats.jsonl, without their newlines.
func logLines(t *testing.T) [][]byte {
	t.Helper()
	log, err := fixtures.RTCStatsLog()
	if err != nil {
		t.Fatal(err)
	}
	return bytes.Split(bytes.TrimSuffix(log, []byte("\n")), []byte("\n"))
}

// webhookBodies returns the bodies of fixtures.Webhooks, in the log's order.
func webhookBodies(t *testing.T) [][]byte {
	t.Helper()
	hooks, err := fixtures.Webhooks()
	if err != nil {
		t.Fatal(err)
	}
	var out [][]byte
	for _, h := range hooks {
		out = append(out, bytes.TrimSpace(h.Body))
	}
	return out
}

// span is where a report is in the fixture log.
type span struct{ first, last int }

// fixtureSpans are the lines of the fixture's eight reports: four of 27 elements (pc1),
// four of 25 (pc2).
var fixtureSpans = []span{{1, 27}, {28, 54}, {55, 81}, {82, 108}, {109, 133}, {134, 158}, {159, 183}, {184, 208}}

// wantReport is a report that a test expects: the fixture report at index (-1: a report of
// bad lines without an id) over lines first to last, good or with the bad lines given.
type wantReport struct {
	index       int
	first, last int
	bad         map[int]string // line -> in its error
}

// fixtureReports expects the fixture's reports as they are, but those of bad.
func fixtureReports(bad map[int]wantReport) []wantReport {
	var out []wantReport
	for i, s := range fixtureSpans {
		if w, ok := bad[i]; ok {
			out = append(out, w)
			continue
		}
		out = append(out, wantReport{index: i, first: s.first, last: s.last})
	}
	return out
}

// readAll reads every report of input.
func readAll(t *testing.T, input []byte, o ReaderOptions) []*Report {
	t.Helper()
	r, err := NewReader(bytes.NewReader(input), "rtc_stats.jsonl", o)
	if err != nil {
		t.Fatal(err)
	}
	var out []*Report
	for {
		rep, err := r.Next()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, rep)
	}
}

func join(lines [][]byte) []byte { return append(bytes.Join(lines, []byte("\n")), '\n') }

// edit returns the fixture log with line n (from 1) replaced by f of it.
func edit(t *testing.T, n int, f func([]byte) []byte) []byte {
	lines := logLines(t)
	lines[n-1] = f(bytes.Clone(lines[n-1]))
	return join(lines)
}

func TestReaderRebuildsReports(t *testing.T) {
	all := join(logLines(t))
	truncated := all[:len(all)-200] // the last line cut, without its newline
	tests := []struct {
		name  string
		input []byte
		opts  ReaderOptions
		want  []wantReport
	}{
		{name: "a file of only good lines gives the webhook bodies", input: all, want: fixtureReports(nil)},
		{
			name:  "a complete last line without a newline is taken",
			input: all[:len(all)-1],
			want:  fixtureReports(nil),
		},
		{
			name:  "empty lines and CRLF line ends are ignored",
			input: bytes.ReplaceAll(append([]byte("\n"), all...), []byte("\n"), []byte("\r\n\r\n")),
			want: func() []wantReport {
				var out []wantReport
				for i, s := range fixtureSpans {
					out = append(out, wantReport{index: i, first: 2*s.first + 1, last: 2*s.last + 1})
				}
				return out
			}(),
		},
		{
			name:  "a truncated last line rejects its report",
			input: truncated,
			want:  fixtureReports(map[int]wantReport{7: {index: 7, first: 184, last: 208, bad: map[int]string{208: "truncated"}}}),
		},
		{
			name:  "a line that is not JSON rejects the report it is in",
			input: edit(t, 30, func([]byte) []byte { return []byte("this is not JSON") }),
			want:  fixtureReports(map[int]wantReport{1: {index: 1, first: 28, last: 54, bad: map[int]string{30: "not valid JSON"}}}),
		},
		{
			name:  "a line cut short inside a report keeps its id and rejects that report",
			input: edit(t, 55, func(l []byte) []byte { return l[:len(l)/2] }),
			// Line 55 starts report 2: its id is read from the cut line.
			want: fixtureReports(map[int]wantReport{2: {index: 2, first: 55, last: 81, bad: map[int]string{55: "truncated"}}}),
		},
		{
			name:  "a line that is not JSON before the first report rejects it",
			input: append([]byte("garbage\n"), all...),
			want:  shift(fixtureReports(map[int]wantReport{0: {index: 0, first: 0, last: 27, bad: map[int]string{1: "not valid JSON"}}}), 1),
		},
		{
			name:  "lines that are not JSON alone are a report without an id",
			input: []byte("garbage\n{\"id\n"),
			want:  []wantReport{{index: -1, first: 1, last: 2, bad: map[int]string{1: "not valid JSON", 2: "truncated"}}},
		},
		{
			name: "differing members within one id reject the report",
			input: edit(t, 60, func(l []byte) []byte {
				return bytes.Replace(l, []byte(`"timestamp":"2026-`), []byte(`"timestamp":"2027-`), 1)
			}),
			want: fixtureReports(map[int]wantReport{2: {index: 2, first: 55, last: 81, bad: map[int]string{60: `"timestamp" is "2027-`}}}),
		},
		{
			name: "a member added within one id rejects the report",
			input: edit(t, 81, func(l []byte) []byte {
				return bytes.Replace(l, []byte(`"rtc_id"`), []byte(`"new":1,"rtc_id"`), 1)
			}),
			want: fixtureReports(map[int]wantReport{2: {index: 2, first: 55, last: 81, bad: map[int]string{81: `"new" is added`}}}),
		},
		{
			name: "rtc_data that is not an object rejects the report",
			input: edit(t, 110, func(l []byte) []byte {
				i := bytes.Index(l, []byte(`"rtc_data":`)) + len(`"rtc_data":`)
				j := bytes.Index(l, []byte(`,"log_written"`))
				return append(append(l[:i:i], `[1,2]`...), l[j:]...)
			}),
			want: fixtureReports(map[int]wantReport{4: {index: 4, first: 109, last: 133, bad: map[int]string{110: "rtc_data is not a JSON object"}}}),
		},
		{
			name: "a line without rtc_data rejects the report",
			input: edit(t, 2, func(l []byte) []byte {
				return bytes.Replace(l, []byte(`"rtc_data"`), []byte(`"rtc_dat"`), 1)
			}),
			want: fixtureReports(map[int]wantReport{0: {index: 0, first: 1, last: 27, bad: map[int]string{2: "no rtc_data"}}}),
		},
		{
			name: "a line without an id between two reports rejects both",
			input: edit(t, 109, func(l []byte) []byte {
				return bytes.Replace(l, []byte(`"id":`), []byte(`"i_d":`), 1)
			}),
			want: fixtureReports(map[int]wantReport{
				3: {index: 3, first: 82, last: 109, bad: map[int]string{109: "no id"}},
				4: {index: 4, first: 109, last: 133, bad: map[int]string{109: "no id"}},
			}),
		},
		{
			name:  "a webhook body is not a log line",
			input: append(append(webhookBodies(t)[0], '\n'), all...),
			// Its id is that of the first report, which it then joins.
			want: shift(fixtureReports(map[int]wantReport{0: {index: 0, first: 0, last: 27, bad: map[int]string{1: "no stats member"}}}), 1),
		},
		{
			name:  "a line over the limit is read past and rejects its report",
			input: edit(t, 140, func(l []byte) []byte { return append(l[:len(l)-1], strings.Repeat(" ", 10000)+"}"...) }),
			opts:  ReaderOptions{MaxLine: 8000},
			want:  fixtureReports(map[int]wantReport{5: {index: 5, first: 134, last: 158, bad: map[int]string{140: "line too long"}}}),
		},
		{
			name:  "a report over the body limit is rejected",
			input: all,
			opts:  ReaderOptions{MaxBody: 10000},
			want: func() []wantReport {
				var out []wantReport
				for i, s := range fixtureSpans {
					out = append(out, wantReport{index: i, first: s.first, last: s.last, bad: map[int]string{0: "larger than 10000 bytes"}})
				}
				return out
			}(),
		},
	}
	bodies := webhookBodies(t)
	ids := reportIDs(t, bodies)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := readAll(t, tt.input, tt.opts)
			if len(got) != len(tt.want) {
				for _, r := range got {
					t.Logf("got %s:%d-%d %s ok=%v %v", r.File, r.Line, r.LastLine, r.ID, r.OK(), r.Bad)
				}
				t.Fatalf("got %d reports, want %d", len(got), len(tt.want))
			}
			for i, w := range tt.want {
				r := got[i]
				if r.Line != w.first || r.LastLine != w.last {
					t.Errorf("report %d: lines %d-%d, want %d-%d", i, r.Line, r.LastLine, w.first, w.last)
				}
				wantID := ""
				if w.index >= 0 {
					wantID = ids[w.index]
				}
				if r.ID != wantID {
					t.Errorf("report %d: id %q, want %q", i, r.ID, wantID)
				}
				if len(w.bad) == 0 {
					if !r.OK() {
						t.Errorf("report %d: rejected: %v", i, r.Bad)
					} else if !bytes.Equal(r.Body, bodies[w.index]) {
						t.Errorf("report %d: body differs from the webhook's\n got %.300s\nwant %.300s", i, r.Body, bodies[w.index])
					}
					continue
				}
				if r.OK() || r.Body != nil {
					t.Errorf("report %d: not rejected (body %d bytes), want bad lines %v", i, len(r.Body), w.bad)
					continue
				}
				checkBad(t, i, r.Bad, w.bad)
			}
		})
	}
}

// checkBad compares a report's bad lines with want (line -> in its error); line 0 stands
// for any line.
func checkBad(t *testing.T, i int, got []*LineError, want map[int]string) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("report %d: bad lines %v, want %d", i, got, len(want))
		return
	}
	for _, le := range got {
		s, ok := want[le.Line]
		if !ok {
			s, ok = want[0]
		}
		if !ok || !strings.Contains(le.Error(), s) || !strings.HasPrefix(le.Error(), fmt.Sprintf("rtc_stats.jsonl:%d: ", le.Line)) {
			t.Errorf("report %d: bad line %q, want one about %q (want %v)", i, le.Error(), s, want)
		}
	}
}

// shift moves the line numbers of want by n.
func shift(want []wantReport, n int) []wantReport {
	for i := range want {
		want[i].first += n
		want[i].last += n
	}
	return want
}

// reportIDs returns the id of each body.
func reportIDs(t *testing.T, bodies [][]byte) []string {
	t.Helper()
	var out []string
	for _, b := range bodies {
		l, _ := parseLine(b) // "stats" makes it fail after the id
		if l.id == "" {
			t.Fatalf("no id in %.100s", b)
		}
		out = append(out, l.id)
	}
	return out
}

func TestReaderGzip(t *testing.T) {
	plain := join(logLines(t))
	var gz bytes.Buffer
	// Two gzip members, as logrotate's appended or concatenated files have.
	for _, part := range [][]byte{plain[:1000], plain[1000:]} {
		zw := gzip.NewWriter(&gz)
		zw.Write(part)
		zw.Close()
	}
	tests := []struct {
		name  string
		input io.Reader
	}{
		{"gzip by its magic, in two members", bytes.NewReader(gz.Bytes())},
		{"gzip read a byte at a time", iotest.OneByteReader(bytes.NewReader(gz.Bytes()))},
		{"plain read a byte at a time", iotest.OneByteReader(bytes.NewReader(plain))},
	}
	want := webhookBodies(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := NewReader(tt.input, "rtc_stats.jsonl.gz", ReaderOptions{})
			if err != nil {
				t.Fatal(err)
			}
			for i := 0; ; i++ {
				rep, err := r.Next()
				if errors.Is(err, io.EOF) {
					if i != len(want) {
						t.Errorf("%d reports, want %d", i, len(want))
					}
					break
				}
				if err != nil {
					t.Fatal(err)
				}
				if i >= len(want) || !rep.OK() || !bytes.Equal(rep.Body, want[i]) {
					t.Fatalf("report %d (%s:%d) differs from the webhook's body: %v", i, rep.File, rep.Line, rep.Bad)
				}
			}
			if r.Lines() != 208 {
				t.Errorf("%d lines read, want 208", r.Lines())
			}
		})
	}
}

func TestReaderCorruptGzip(t *testing.T) {
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(join(logLines(t)))
	zw.Close()
	b := gz.Bytes()
	// Cut the stream inside the second report: the first comes whole, the second is lost.
	cut := b[:len(b)*6/10]
	got := readAll(t, cut, ReaderOptions{})
	if len(got) < 2 {
		t.Fatalf("%d reports, want at least 2", len(got))
	}
	last := got[len(got)-1]
	if last.OK() || !strings.Contains(last.Bad[len(last.Bad)-1].Error(), "read: ") {
		t.Errorf("the report at the cut: %v, want a read error", last.Bad)
	}
	for _, r := range got[:len(got)-1] {
		if !r.OK() {
			t.Errorf("report at line %d before the cut: %v", r.Line, r.Bad)
		}
	}
}
