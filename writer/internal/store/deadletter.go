package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"kohaku/pkg/normalize"
)

// Reasons of dead letters for whole messages, the reason column's values besides the
// normalize.Reject kinds of single elements and ReasonConflict.
const (
	ReasonDecode   = "decode"   // the body cannot become rows (Message.Err)
	ReasonDatabase = "database" // the database refused the message's rows
	// ReasonConflict marks a row whose natural key already held a row with different
	// content: the incoming element is kept, the stored row stays.
	ReasonConflict = "conflict"
)

// deadLetter is one row of kohaku_dead_letter: a whole message, or one stats element of a
// message whose other elements are stored.
type deadLetter struct {
	msg     int    // index of the message in the batch
	element int    // index of the element in the message's stats array; -1 for the whole message
	body    []byte // the message's body, or the element's JSON
	reason  string // a short word: the metric label and the reason column
	err     string // what is wrong, for a person
	table   string // the table of a conflict, "" otherwise
}

// class orders the dead letters of one message for its log lines: the whole message, its
// elements that cannot be stored, its conflicts.
func (d deadLetter) class() int {
	switch {
	case d.element < 0:
		return 0
	case d.reason != ReasonConflict:
		return 1
	}
	return 2
}

// deadLetterSQL keeps dead letters given as lists of their fields. (stream_seq, element)
// is unique (element NULL for a whole message), so a message or element delivered again (a
// lost Term, a redelivery, a replay) is kept once; RETURNING tells which rows this call
// added. One statement for the batch: a report can have many elements set apart.
//
// A report in conflict in every element has dozens of letters, so what they share comes
// once per message ($1 to $4: stream sequence, subject, headers, connection id), each letter
// naming its message by position ($6). The letters' own fields cost no array encoding, which
// pgx does element by element, through its generic plans, into a buffer that starts small
// for every query: their bodies come as one bytea ($5) and their errors as another ($10),
// each letter a range of them ($8, $9 and $11, $12), and their numbers and reasons as
// comma-separated text ($6 to $9, $11 to $13; a reason is a word without commas). A bytea
// array of the bodies, and later text and integer arrays of the rest, made a report in
// conflict cost the writer several times a normal one. An element of -1 stands for the
// NULL of a whole message, and an empty connection id (which no connection has) for none;
// a whole message has none.
const deadLetterSQL = `INSERT INTO kohaku_dead_letter (stream_seq, subject, headers, body, error, element, connection_id, reason)
SELECT m.seq, m.subject, m.headers, substring($5::bytea FROM d.off + 1 FOR d.len),
	convert_from(substring($10::bytea FROM d.err_off + 1 FOR d.err_len), 'UTF8'), nullif(d.element, -1),
	CASE WHEN d.element >= 0 THEN nullif(m.conn, '') END, d.reason
FROM unnest(string_to_array($6, ',')::integer[], string_to_array($7, ',')::integer[],
	string_to_array($8, ',')::integer[], string_to_array($9, ',')::integer[],
	string_to_array($11, ',')::integer[], string_to_array($12, ',')::integer[], string_to_array($13, ','))
	AS d(m, element, off, len, err_off, err_len, reason)
JOIN unnest($1::bigint[], $2::text[], $3::jsonb[], $4::text[]) WITH ORDINALITY AS m(seq, subject, headers, conn, n) ON m.n = d.m
ORDER BY 1, 6
ON CONFLICT DO NOTHING
RETURNING stream_seq, element`

// deadLetterArgs are the arguments of deadLetterSQL for some dead letters: per message with
// letters, in the order of its first letter, and per letter.
type deadLetterArgs struct {
	seqs     []int64
	subjects []string
	headers  [][]byte
	conns    []string
	bodies   []byte // every letter's body, one after the other
	errs     []byte // every letter's error, one after the other

	// Per letter, comma separated: msg is 1 + the index of the letter's message above, and
	// off, size, errOff and errSize its ranges of bodies and errs.
	msg, element, off, size, errOff, errSize, reasons []byte
	msgs                                              []int32 // msg, as numbers
}

// newDeadLetterArgs gathers the arguments for dls, the dead letters of msgs. The bodies are
// slices of the batch's bodies, so their sum, and every offset, is within the batch's size.
func newDeadLetterArgs(dls []deadLetter, msgs []Message) *deadLetterArgs {
	size := 0
	for _, d := range dls {
		size += len(d.body)
	}
	a := &deadLetterArgs{bodies: make([]byte, 0, size), msgs: make([]int32, len(dls))}
	at := map[int]int32{} // message index in msgs: its position in the per-message arrays, from 1
	for i, d := range dls {
		k, ok := at[d.msg]
		if !ok {
			m := msgs[d.msg]
			conn := ""
			if m.Rows != nil && m.Rows.Connection != nil {
				conn = clean(m.Rows.Connection.ConnectionID)
			}
			a.seqs = append(a.seqs, int64(m.Seq))
			a.subjects = append(a.subjects, clean(m.Subject))
			a.headers = append(a.headers, headersJSON(m.Header))
			a.conns = append(a.conns, conn)
			k = int32(len(a.seqs))
			at[d.msg] = k
		}
		err := clean(d.err)
		a.msgs[i] = k
		a.msg = appendListInt(a.msg, int(k))
		a.element = appendListInt(a.element, d.element)
		a.off, a.size = appendListInt(a.off, len(a.bodies)), appendListInt(a.size, len(d.body))
		a.errOff, a.errSize = appendListInt(a.errOff, len(a.errs)), appendListInt(a.errSize, len(err))
		a.bodies = append(a.bodies, d.body...)
		a.errs = append(a.errs, err...)
		if len(a.reasons) > 0 {
			a.reasons = append(a.reasons, ',')
		}
		a.reasons = append(a.reasons, strings.ReplaceAll(d.reason, ",", ";")...) // words, but the list must hold
	}
	return a
}

// appendListInt appends n to the comma-separated list b.
func appendListInt(b []byte, n int) []byte {
	if len(b) > 0 {
		b = append(b, ',')
	}
	return strconv.AppendInt(b, int64(n), 10)
}

// writeDeadLetters writes dls, the dead letters of msgs, to kohaku_dead_letter and returns
// those it added, in the order of dls; the others were added by an earlier delivery.
func writeDeadLetters(ctx context.Context, tx pgx.Tx, dls []deadLetter, msgs []Message) ([]deadLetter, error) {
	if len(dls) == 0 {
		return nil, nil
	}
	a := newDeadLetterArgs(dls, msgs)
	rows, err := tx.Query(ctx, deadLetterSQL, a.seqs, a.subjects, a.headers, a.conns, a.bodies,
		string(a.msg), string(a.element), string(a.off), string(a.size), a.errs, string(a.errOff), string(a.errSize),
		string(a.reasons))
	if err != nil {
		return nil, fmt.Errorf("dead-letter %d messages or elements: %w", len(dls), err)
	}
	type key struct {
		seq     int64
		element int32
	}
	added := map[key]bool{}
	for rows.Next() {
		var k key
		var e *int32
		if err := rows.Scan(&k.seq, &e); err != nil {
			rows.Close()
			return nil, fmt.Errorf("dead-letter: %w", err)
		}
		k.element = -1
		if e != nil {
			k.element = *e
		}
		added[k] = true
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("dead-letter %d messages or elements: %w", len(dls), err)
	}
	var out []deadLetter
	for i, d := range dls {
		k := key{a.seqs[a.msgs[i]-1], int32(d.element)}
		if added[k] {
			out = append(out, d)
			delete(added, k) // the same message twice in a batch added one row
		}
	}
	return out, nil
}

// messageDeadLetter is the dead letter of msgs[i], which cannot be stored at all.
func messageDeadLetter(msgs []Message, i int) deadLetter {
	m := msgs[i]
	d := deadLetter{msg: i, element: -1, body: m.Body, reason: ReasonDecode, err: "message has no rows"}
	if m.Err != nil {
		d.err = m.Err.Error()
		if errors.As(m.Err, new(*pgconn.PgError)) {
			d.reason = ReasonDatabase
		}
	}
	return d
}

// rejectedDeadLetters are the dead letters of the elements of msgs[i] that normalize set
// apart.
func rejectedDeadLetters(msgs []Message, i int) []deadLetter {
	m := msgs[i]
	out := make([]deadLetter, len(m.Rows.Rejected))
	for k, r := range m.Rows.Rejected {
		out[k] = deadLetter{msg: i, element: r.Index, body: r.Raw, reason: r.Kind,
			err: fmt.Sprintf("stats[%d]: %s", r.Index, r.Reason)}
	}
	return out
}

// conflictDeadLetter is the dead letter of the row at origin o of msgs[i], whose natural
// key in table t already held a row with different content.
func conflictDeadLetter(msgs []Message, i int, table string, t *tableSQL, o normalize.Origin) deadLetter {
	return deadLetter{msg: i, element: o.Index, body: o.Raw(msgs[i].Body), reason: ReasonConflict, table: table,
		err: "stats[" + strconv.Itoa(o.Index) + "]: " + t.conflict}
}

// headersJSON encodes h as a JSON object of string arrays for the headers jsonb column.
func headersJSON(h map[string][]string) []byte {
	out := make(map[string][]string, len(h))
	for k, vs := range h {
		cvs := make([]string, len(vs))
		for i, v := range vs {
			cvs[i] = clean(v)
		}
		out[clean(k)] = cvs
	}
	b, err := json.Marshal(out)
	if err != nil {
		return []byte("{}")
	}
	return b
}

// clean makes s storable in text and jsonb: valid UTF-8 without NUL (jsonb rejects \u0000).
// The error of a dead letter may quote the body's bytes. A string that is storable already,
// nearly every one, is returned as it is, without a copy.
func clean(s string) string {
	if utf8.ValidString(s) && strings.IndexByte(s, 0) < 0 {
		return s
	}
	return strings.ReplaceAll(strings.ToValidUTF8(s, "\uFFFD"), "\x00", "\uFFFD")
}
