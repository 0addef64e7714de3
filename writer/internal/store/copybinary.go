package store

import (
	"context"
	"encoding/binary"
	"io"
	"math"
	"time"

	"github.com/jackc/pgx/v5"

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

// encodable reports whether every value of rows has the Go type that the encoder writes for
// its column; when not, the caller falls back to pgx's CopyFrom.
func encodable(rows *tableRows, types []colType) bool {
	for _, part := range rows.parts {
		for _, row := range part {
			if len(row) != len(types) {
				return false
			}
			for k, v := range row {
				if v == nil {
					continue
				}
				var ok bool
				switch types[k] {
				case colBigint:
					_, ok = v.(int64)
				case colDouble:
					_, ok = v.(float64)
				case colText:
					_, ok = v.(string)
				case colBoolean:
					_, ok = v.(bool)
				case colJSONB:
					_, ok = v.([]byte)
				case colTimestamptz:
					_, ok = v.(time.Time)
				}
				if !ok {
					return false
				}
			}
		}
	}
	return true
}

// copyFrom copies rows into t in one COPY ... FROM STDIN in binary format, and returns
// the number of rows copied. Rows whose values the encoder cannot write go through pgx's
// CopyFrom instead.
func copyFrom(ctx context.Context, tx pgx.Tx, t *copyTarget, rows *tableRows) (int64, error) {
	rows.rewind()
	rows.ord = t.ord
	defer func() { rows.ord = false }()
	if t.types == nil || !encodable(rows, t.types) {
		return tx.CopyFrom(ctx, pgx.Identifier{t.into}, t.columns, rows)
	}
	tag, err := tx.Conn().PgConn().CopyFrom(ctx, &copyReader{rows: rows, types: t.types, ord: t.ord}, t.sql)
	if err != nil {
		return 0, err
	}
	return tag.RowsAffected(), nil
}

// copyReader reads rows as a binary COPY stream: the header, each row, the trailer.
type copyReader struct {
	rows    *tableRows
	types   []colType
	ord     bool   // each row ends with its ordinal in rows, a bigint
	mem     []byte // where rows are encoded, kept from one fill to the next
	buf     []byte // encoded and not yet read: the tail of mem
	started bool
	done    bool
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
		r.encode()
	}
	n := copy(p, r.buf)
	r.buf = r.buf[n:]
	return n, nil
}

// encode encodes rows until about fill bytes are ready, and the trailer after the last.
func (r *copyReader) encode() {
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
		b = encodeRow(b, row, r.types, ord)
	}
	r.mem, r.buf = b, b
}

// encodeRow appends one row: the field count, then each field's length (-1 for NULL) and
// bytes, and ord as a last bigint field unless it is negative. The values' types were
// checked by encodable.
func encodeRow(b []byte, row []any, types []colType, ord int) []byte {
	fields := len(row)
	if ord >= 0 {
		fields++
	}
	b = binary.BigEndian.AppendUint16(b, uint16(fields))
	for k, v := range row {
		if v == nil {
			b = binary.BigEndian.AppendUint32(b, math.MaxUint32) // -1
			continue
		}
		switch types[k] {
		case colBigint:
			b = binary.BigEndian.AppendUint32(b, 8)
			b = binary.BigEndian.AppendUint64(b, uint64(v.(int64)))
		case colDouble:
			b = binary.BigEndian.AppendUint32(b, 8)
			b = binary.BigEndian.AppendUint64(b, math.Float64bits(v.(float64)))
		case colText:
			s := v.(string)
			b = binary.BigEndian.AppendUint32(b, uint32(len(s)))
			b = append(b, s...)
		case colBoolean:
			b = binary.BigEndian.AppendUint32(b, 1)
			if v.(bool) {
				b = append(b, 1)
			} else {
				b = append(b, 0)
			}
		case colJSONB:
			j := v.([]byte)
			b = binary.BigEndian.AppendUint32(b, uint32(len(j)+1))
			b = append(b, 1) // jsonb's binary format version
			b = append(b, j...)
		case colTimestamptz:
			b = binary.BigEndian.AppendUint32(b, 8)
			b = binary.BigEndian.AppendUint64(b, uint64(pgMicros(v.(time.Time))))
		}
	}
	if ord >= 0 {
		b = binary.BigEndian.AppendUint32(b, 8)
		b = binary.BigEndian.AppendUint64(b, uint64(ord))
	}
	return b
}

// pgEpochMicros is PostgreSQL's epoch, 2000-01-01 00:00:00 UTC, in microseconds since the
// Unix epoch.
const pgEpochMicros = 946_684_800 * 1_000_000

// pgMicros is t as a timestamptz: microseconds since PostgreSQL's epoch, sub-microseconds
// dropped as PostgreSQL and pgx drop them.
func pgMicros(t time.Time) int64 {
	return t.Unix()*1_000_000 + int64(t.Nanosecond())/1000 - pgEpochMicros
}
