package importer

import (
	"bytes"
	"errors"
	"fmt"
	"io"
)

// Report is one stats webhook report rebuilt from its lines of rtc_stats.jsonl, or lines
// that cannot be imported.
type Report struct {
	File     string // the input's name, as given
	Line     int    // number of the report's first line, from 1
	LastLine int    // number of its last line
	ID       string // the webhook request id; "" for bad lines outside any report
	Elements int    // RTCStats objects: the lines that were good
	Body     []byte // the webhook body; nil when Bad is not empty
	Bad      []*LineError
}

// OK reports whether r can be imported as far as its lines tell.
func (r *Report) OK() bool { return len(r.Bad) == 0 }

// LineError is why a line, or the input at a line, could not be read.
type LineError struct {
	File string
	Line int
	Err  error
}

func (e *LineError) Error() string { return fmt.Sprintf("%s:%d: %v", e.File, e.Line, e.Err) }
func (e *LineError) Unwrap() error { return e.Err }

// ReaderOptions bound what a Reader holds. Zero fields take the defaults named.
type ReaderOptions struct {
	// MaxLine is the longest line taken (4 MiB, the receiver's default body limit); a
	// longer one is a bad line, read past but never held.
	MaxLine int
	// MaxBody is the largest webhook body rebuilt (4 MiB too: a report that the webhook
	// could not have delivered to a receiver with the default limit); a larger report is
	// rejected.
	MaxBody int
}

func (o ReaderOptions) withDefaults() ReaderOptions {
	if o.MaxLine == 0 {
		o.MaxLine = 4 << 20
	}
	if o.MaxBody == 0 {
		o.MaxBody = 4 << 20
	}
	return o
}

// Reader reads the reports of one rtc_stats.jsonl input.
type Reader struct {
	name    string
	lines   *lineReader
	maxBody int
	done    bool

	cur   *Report      // the report in hand
	first []member     // the members of its first line, for the lines after it
	body  bytes.Buffer // its body so far, while it is good
	// orphans are the bad lines without a readable id since the last line with one: they
	// may belong to the report in hand or to the next, so both are rejected.
	orphans []*LineError
}

// NewReader returns a Reader of the input r, gzip-compressed or not, named name in
// reports and errors.
func NewReader(r io.Reader, name string, o ReaderOptions) (*Reader, error) {
	o = o.withDefaults()
	lr, err := newLineReader(r, o.MaxLine)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return &Reader{name: name, lines: lr, maxBody: o.MaxBody}, nil
}

// Lines is the number of lines read so far.
func (r *Reader) Lines() int { return r.lines.n }

// Next returns the next report, complete once a line of another id follows it or the input
// ends, and io.EOF after the last. A report with a bad line is returned whole, with Bad
// set and no Body, so that none of its elements is imported alone. A bad line whose id
// cannot be read (a line cut short keeps its id, which comes early) may belong to the
// report before it or to the one after it: it is counted to both, and to a Report of its
// own, without an ID, when there is neither. When the input cannot be read to its end,
// the report then in hand is returned as bad, and Next returns io.EOF afterwards.
func (r *Reader) Next() (*Report, error) {
	for !r.done {
		var ready *Report
		line, complete, err := r.lines.next()
		switch {
		case errors.Is(err, io.EOF):
			r.done = true
		case errors.Is(err, ErrLineTooLong):
			r.orphan(err)
		case err != nil:
			// The rest of the input is lost, and with it maybe elements of the report in
			// hand.
			r.done = true
			r.lines.n++ // the line that could not be read
			r.orphan(fmt.Errorf("read: %w", err))
		case len(bytes.TrimSpace(line)) == 0:
			// An empty line belongs to nothing.
		default:
			l, err := parseLine(line)
			if err != nil && !complete {
				err = fmt.Errorf("last line, without a newline: %w", err)
			}
			if err != nil && l.id == "" {
				r.orphan(err)
				break
			}
			ready = r.add(&l, err)
		}
		if ready != nil {
			return ready, nil
		}
	}
	switch {
	case r.cur != nil:
		r.orphans = nil // no report follows them
		return r.finish(), nil
	case len(r.orphans) > 0:
		rep := &Report{File: r.name, Line: r.orphans[0].Line, LastLine: r.lines.n, Bad: r.orphans}
		r.orphans = nil
		return rep, nil
	}
	return nil, io.EOF
}

// orphan counts the bad line just read, whose id is unknown, to the report in hand and
// keeps it for the next.
func (r *Reader) orphan(err error) {
	le := &LineError{File: r.name, Line: r.lines.n, Err: err}
	r.orphans = append(r.orphans, le)
	if rep := r.cur; rep != nil {
		rep.LastLine = le.Line
		r.reject(le)
	}
}

// add counts the line l just read to the report of its id; bad tells why the line is bad
// when it is. It returns the report that the line showed complete, if any.
func (r *Reader) add(l *logLine, bad error) *Report {
	n := r.lines.n
	var ready *Report
	if r.cur != nil && l.id != r.cur.ID {
		ready = r.finish()
	}
	rep := r.cur
	if rep == nil {
		rep = &Report{File: r.name, Line: n, ID: l.id}
		r.cur = rep
		if len(r.orphans) > 0 {
			// The lines without an id just before may have been this report's first.
			rep.Line = r.orphans[0].Line
			r.reject(r.orphans...)
		}
	}
	r.orphans = nil
	rep.LastLine = n
	switch {
	case bad != nil:
		r.reject(&LineError{File: r.name, Line: n, Err: bad})
	case !rep.OK():
		// Rejected already: nothing of it is kept.
	case rep.Elements == 0:
		r.first = cloneMembers(l.envelope)
		r.body.WriteByte('{')
		writeMembers(&r.body, l.envelope)
		r.body.WriteString(`,"stats":[`)
		r.element(l.data)
	default:
		if d := differs(r.first, l.envelope); d != "" {
			r.reject(&LineError{File: r.name, Line: n,
				Err: fmt.Errorf("the report's members differ from those of its first line %d: %s", rep.Line, d)})
			break
		}
		r.body.WriteByte(',')
		r.element(l.data)
	}
	return ready
}

// element adds an RTCStats object to the body in hand.
func (r *Reader) element(data []byte) {
	r.cur.Elements++
	r.body.Write(data)
	if r.body.Len()+len("]}") > r.maxBody {
		r.reject(&LineError{File: r.name, Line: r.lines.n, Err: fmt.Errorf("the report grows larger than %d bytes", r.maxBody)})
	}
}

// reject marks the report in hand bad because of the lines les.
func (r *Reader) reject(les ...*LineError) {
	r.cur.Bad = append(r.cur.Bad, les...)
	r.body.Reset()
	r.first = nil
}

// finish returns the report in hand with its body, and leaves none in hand.
func (r *Reader) finish() *Report {
	rep := r.cur
	if rep.OK() {
		r.body.WriteString("]}")
		rep.Body = bytes.Clone(r.body.Bytes())
	}
	r.cur, r.first = nil, nil
	r.body.Reset()
	return rep
}

// writeMembers writes ms as the members of a JSON object, without its braces.
func writeMembers(b *bytes.Buffer, ms []member) {
	for i, m := range ms {
		if i > 0 {
			b.WriteByte(',')
		}
		b.Write(m.key)
		b.WriteByte(':')
		b.Write(m.value)
	}
}

// cloneMembers copies ms out of the line they point into, which is reused.
func cloneMembers(ms []member) []member {
	n := 0
	for _, m := range ms {
		n += len(m.key) + len(m.value)
	}
	buf := make([]byte, 0, n)
	out := make([]member, len(ms))
	for i, m := range ms {
		buf = append(buf, m.key...)
		k := buf[len(buf)-len(m.key):]
		buf = append(buf, m.value...)
		out[i] = member{key: k, value: buf[len(buf)-len(m.value):]}
	}
	return out
}

// differs names the first difference between the members of two lines of one report, ""
// when there is none: they must be byte for byte the same.
func differs(want, got []member) string {
	for i := range min(len(want), len(got)) {
		switch {
		case !bytes.Equal(want[i].key, got[i].key):
			return fmt.Sprintf("member %d is %s, not %s", i+1, got[i].key, want[i].key)
		case !bytes.Equal(want[i].value, got[i].value):
			return fmt.Sprintf("%s is %s, not %s", got[i].key, abbrev(got[i].value), abbrev(want[i].value))
		}
	}
	switch {
	case len(got) > len(want):
		return fmt.Sprintf("%s is added", got[len(want)].key)
	case len(got) < len(want):
		return fmt.Sprintf("%s is missing", want[len(got)].key)
	}
	return ""
}

// abbrev shortens a raw value for a message.
func abbrev(v []byte) string {
	const max = 60
	if len(v) <= max {
		return string(v)
	}
	return string(v[:max]) + "..."
}
