package store

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"kohaku/pkg/normalize"
)

// The rows of a batch are encoded into PostgreSQL's binary COPY format here rather than by
// pgx's CopyFrom, which looks up an encode plan for every value by its Go type: with a few
// dozen columns per row that lookup cost the writer about as much CPU as normalizing the
// message. normalize.Message gives each column one Go type (its tests check it), so one
// type switch per value suffices. The format is in PostgreSQL's documentation of COPY,
// "Binary Format": https://www.postgresql.org/docs/current/sql-copy.html

// colType is a column's PostgreSQL type, as far as the encoder cares.
type colType uint8

const (
	colBigint colType = iota + 1
	colDouble
	colText
	colBoolean
	colJSONB
	colTimestamptz
)

// columnTypes returns the types of normalize.Columns(table), or false when one of them is
// not a type the encoder knows.
func columnTypes(table string) ([]colType, bool) {
	names := normalize.ColumnTypes(table)
	out := make([]colType, len(names))
	for k, n := range names {
		switch n {
		case "bigint":
			out[k] = colBigint
		case "double precision":
			out[k] = colDouble
		case "text":
			out[k] = colText
		case "boolean":
			out[k] = colBoolean
		case "jsonb":
			out[k] = colJSONB
		case "timestamptz":
			out[k] = colTimestamptz
		default:
			return nil, false
		}
	}
	return out, len(out) > 0
}

// copyFrom copies rows into t in one COPY ... FROM STDIN in binary format, and returns
// the number of rows copied. A table with a column type the encoder does not know goes
// through pgx's CopyFrom instead.
func copyFrom(ctx context.Context, tx pgx.Tx, t *copyTarget, rows *tableRows) (int64, error) {
	rows.rewind()
	rows.ord = t.ord
	defer func() { rows.ord = false }()
	if t.types == nil {
		return tx.CopyFrom(ctx, pgx.Identifier{t.into}, t.columns, rows)
	}
	// A row the encoder cannot write aborts the COPY; the server answers with the reason,
	// which dataError tells from a failure of the database.
	r := &copyReader{rows: rows, types: t.types, ord: t.ord, typeMap: tx.Conn().TypeMap()}
	tag, err := tx.Conn().PgConn().CopyFrom(ctx, r, t.sql)
	if err != nil {
		return 0, err
	}
	return tag.RowsAffected(), nil
}

// copyReader reads rows as a binary COPY stream: the header, each row, the trailer.
type copyReader struct {
	rows    *tableRows
	types   []colType
	ord     bool        // each row ends with its ordinal in rows, a bigint
	typeMap *pgtype.Map // encodes a value of another Go type than its column's usual one
	mem     []byte      // where rows are encoded, kept from one fill to the next
	buf     []byte      // encoded and not yet read: the tail of mem
	started bool
	done    bool
	slow    int // values encoded through typeMap: none from normalize (its tests check it)
}

// copyHeader is the signature, the flags (no OIDs) and the length of the header extension.
const copyHeader = "PGCOPY\n\xff\r\n\x00" + "\x00\x00\x00\x00" + "\x00\x00\x00\x00"

// fill is how many bytes Read encodes ahead before it copies them out.
const fill = 32 << 10

// Read implements io.Reader.
func (r *copyReader) Read(p []byte) (int, error) {
	if len(r.buf) == 0 {
		if r.done {
			return 0, io.EOF
		}
		if err := r.encode(); err != nil {
			return 0, err
		}
	}
	n := copy(p, r.buf)
	r.buf = r.buf[n:]
	return n, nil
}

// encode encodes rows until about fill bytes are ready, and the trailer after the last.
func (r *copyReader) encode() error {
	// Not buf, which Read has sliced from the front down to no capacity: a new buffer for
	// every fill was as many bytes to allocate, and for the collector to reclaim, as
	// normalizing the messages.
	b := r.mem[:0]
	if cap(b) < fill+1024 {
		b = make([]byte, 0, 2*fill)
	}
	if !r.started {
		r.started = true
		b = append(b, copyHeader...)
	}
	for len(b) < fill {
		if !r.rows.Next() {
			b = binary.BigEndian.AppendUint16(b, 0xffff) // the trailer: a field count of -1
			r.done = true
			break
		}
		row := r.rows.parts[r.rows.part][r.rows.row-1]
		ord := -1
		if r.ord {
			ord = r.rows.at
		}
		var err error
		if b, err = r.encodeRow(b, row, ord); err != nil {
			return fmt.Errorf("encode row %d of the COPY: %w", r.rows.at+1, err)
		}
	}
	r.mem, r.buf = b, b
	return nil
}

// encodeRow appends one row: the field count, then each field's length (-1 for NULL) and
// bytes, and ord as a last bigint field unless it is negative. normalize gives each column
// one Go type, which one type switch writes; a value of any other type is encoded by
// r.typeMap, as pgx's CopyFrom would encode it.
func (r *copyReader) encodeRow(b []byte, row []any, ord int) ([]byte, error) {
	if len(row) != len(r.types) {
		return b, fmt.Errorf("%d values for %d columns", len(row), len(r.types))
	}
	fields := len(row)
	if ord >= 0 {
		fields++
	}
	b = binary.BigEndian.AppendUint16(b, uint16(fields))
	for k, v := range row {
		var ok bool
		if b, ok = appendValue(b, v, r.types[k]); !ok {
			var err error
			if b, err = r.appendOther(b, v, r.types[k]); err != nil {
				return b, fmt.Errorf("column %d: %w", k+1, err)
			}
		}
	}
	if ord >= 0 {
		b = binary.BigEndian.AppendUint32(b, 8)
		b = binary.BigEndian.AppendUint64(b, uint64(ord))
	}
	return b, nil
}

// appendValue appends v as a field of type t when v is nil or has the Go type that
// normalize gives t, and reports whether it did. It switches on t, not on v's type, whose
// case by case search was 0.2 of the encoder's time.
func appendValue(b []byte, v any, t colType) ([]byte, bool) {
	if v == nil {
		return binary.BigEndian.AppendUint32(b, math.MaxUint32), true // -1
	}
	switch t {
	case colBigint:
		if x, ok := v.(int64); ok {
			b = binary.BigEndian.AppendUint32(b, 8)
			return binary.BigEndian.AppendUint64(b, uint64(x)), true
		}
	case colDouble:
		if x, ok := v.(float64); ok {
			b = binary.BigEndian.AppendUint32(b, 8)
			return binary.BigEndian.AppendUint64(b, math.Float64bits(x)), true
		}
	case colText:
		if x, ok := v.(string); ok {
			b = binary.BigEndian.AppendUint32(b, uint32(len(x)))
			return append(b, x...), true
		}
	case colBoolean:
		if x, ok := v.(bool); ok {
			b = binary.BigEndian.AppendUint32(b, 1)
			if x {
				return append(b, 1), true
			}
			return append(b, 0), true
		}
	case colJSONB:
		if x, ok := v.([]byte); ok {
			b = binary.BigEndian.AppendUint32(b, uint32(len(x)+1))
			b = append(b, 1) // jsonb's binary format version
			return append(b, x...), true
		}
	case colTimestamptz:
		if x, ok := v.(time.Time); ok {
			b = binary.BigEndian.AppendUint32(b, 8)
			return binary.BigEndian.AppendUint64(b, uint64(pgMicros(x))), true
		}
	}
	return b, false
}

// oid returns t's OID, by which r.typeMap knows it.
func (t colType) oid() uint32 {
	switch t {
	case colBigint:
		return pgtype.Int8OID
	case colDouble:
		return pgtype.Float8OID
	case colText:
		return pgtype.TextOID
	case colBoolean:
		return pgtype.BoolOID
	case colJSONB:
		return pgtype.JSONBOID
	default:
		return pgtype.TimestamptzOID
	}
}

// appendOther appends v, of a Go type that appendValue does not write for t, as pgx encodes
// it in binary format for a column of type t.
func (r *copyReader) appendOther(b []byte, v any, t colType) ([]byte, error) {
	r.slow++
	at := len(b)
	b = binary.BigEndian.AppendUint32(b, 0) // the length, once known
	out, err := r.typeMap.Encode(t.oid(), pgtype.BinaryFormatCode, v, b)
	if err != nil {
		return b[:at], fmt.Errorf("encode %T: %w", v, err)
	}
	if out == nil { // NULL
		return binary.BigEndian.AppendUint32(b[:at], math.MaxUint32), nil
	}
	binary.BigEndian.PutUint32(out[at:], uint32(len(out)-at-4))
	return out, nil
}

// pgEpochMicros is PostgreSQL's epoch, 2000-01-01 00:00:00 UTC, in microseconds since the
// Unix epoch.
const pgEpochMicros = 946_684_800 * 1_000_000

// pgMicros is t as a timestamptz: microseconds since PostgreSQL's epoch, sub-microseconds
// dropped as PostgreSQL and pgx drop them.
func pgMicros(t time.Time) int64 {
	return t.Unix()*1_000_000 + int64(t.Nanosecond())/1000 - pgEpochMicros
}
