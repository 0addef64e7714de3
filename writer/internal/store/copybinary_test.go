package store

import (
	"context"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"kohaku/pkg/normalize"
	"kohaku/pkg/sora"
	"kohaku/writer/internal/writertest"
)

// TestBinaryCopyStoresWhatPgxStores copies the rows of the fixtures and of tricky values
// once with the writer's binary encoder and once with pgx's CopyFrom, into twin tables, and
// wants the two tables equal, row for row.
func TestBinaryCopyStoresWhatPgxStores(t *testing.T) {
	ctx := context.Background()
	conn := connect(t)

	rows := map[string]*tableRows{}
	add := func(typ string, body []byte) {
		r, err := normalize.Message(typ, body)
		if err != nil {
			t.Fatalf("normalize: %v", err)
		}
		for table, rs := range r.Tables {
			if rows[table] == nil {
				rows[table] = &tableRows{}
			}
			rows[table].parts = append(rows[table].parts, rs)
			rows[table].n += len(rs)
		}
	}
	for _, m := range writertest.Messages(t, 20) {
		add(m.ExporterType, m.Body)
	}
	add(sora.TypeUserAgent, []byte(`{"type":"connection.user-agent","timestamp":"1999-12-31T23:59:59.999999Z",
		"label":"l","version":"v","node_name":"n","multistream":true,"simulcast":false,"spotlight":false,
		"channel_id":"c\u00e9\ud83d\ude00","client_id":"x","session_id":"01JD3K9Q2W8E5R7T1Y4U6I0F00","connection_id":"01JD3K9Q2W8E5R7T1Y4U6I0F01",
		"stats":[
		 {"id":"I","type":"inbound-rtp","timestamp":1.5e12,"ssrc":4294967295,"kind":"video","packetsLost":-9223372036854775808,
		  "jitter":5e-324,"bytesReceived":9223372036854775807,"totalAudioEnergy":1.7976931348623157e308,"trackIdentifier":"\"q\"\\\n\t"},
		 {"id":"O","type":"outbound-rtp","timestamp":0,"active":false,"qualityLimitationDurations":{"none":0.5,"cpu":1e-7,"x":{"y":[1,"\ud800"]}},
		  "rid":"","frameWidth":-0.0,"extraThing":[null,true]},
		 {"id":"T","type":"transport","timestamp":-1,"dtlsState":"connected","iceRole":null},
		 {"id":"Z","type":"future-type","timestamp":2,"a":[1e400]}]}`))

	for _, table := range slices.Sorted(maps.Keys(rows)) {
		t.Run(table, func(t *testing.T) {
			r := rows[table]
			types, ok := columnTypes(table)
			if !ok {
				t.Fatalf("the columns of %s are not all of a type the encoder knows; the writer would copy them with pgx", table)
			}
			if slow := slowValues(t, r, types); slow != 0 {
				t.Fatalf("%d values of %s have another Go type than normalize gives their column", slow, table)
			}
			// Each twice: as the tables take them, and with the ordinal that merging adds.
			bin, viaPgx, binOrd, pgxOrd := "bin_"+table, "pgx_"+table, "bin_ord_"+table, "pgx_ord_"+table
			for _, name := range []string{bin, viaPgx, binOrd, pgxOrd} {
				ord := ""
				if name == binOrd || name == pgxOrd {
					ord = ", " + ordColumn + " bigint"
				}
				if _, err := conn.Exec(ctx, fmt.Sprintf("CREATE TABLE %s (LIKE %s%s)", pgx.Identifier{name}.Sanitize(), pgx.Identifier{table}.Sanitize(), ord)); err != nil {
					t.Fatal(err)
				}
			}
			err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
				for _, into := range []string{bin, binOrd} {
					n, err := copyFrom(ctx, tx, newCopyTarget(into, table, into == binOrd), r)
					if err != nil {
						return fmt.Errorf("binary copy: %w", err)
					}
					if int(n) != r.len() {
						return fmt.Errorf("binary copy: %d rows copied, want %d", n, r.len())
					}
				}
				r.rewind()
				if _, err := tx.CopyFrom(ctx, pgx.Identifier{viaPgx}, normalize.Columns(table), r); err != nil {
					return err
				}
				r.rewind()
				r.ord = true
				_, err := tx.CopyFrom(ctx, pgx.Identifier{pgxOrd}, append(normalize.Columns(table), ordColumn), r)
				r.ord = false
				return err
			})
			if err != nil {
				t.Fatal(err)
			}
			sameRows(t, conn, bin, viaPgx)
			sameRows(t, conn, binOrd, pgxOrd)
			var distinct, lowest, highest int
			q := fmt.Sprintf("SELECT count(DISTINCT %[1]s), min(%[1]s), max(%[1]s) FROM %[2]s", ordColumn, pgx.Identifier{binOrd}.Sanitize())
			if err := conn.QueryRow(ctx, q).Scan(&distinct, &lowest, &highest); err != nil {
				t.Fatal(err)
			}
			if distinct != r.len() || lowest != 0 || highest != r.len()-1 {
				t.Errorf("ordinals: %d distinct from %d to %d, want 0 to %d", distinct, lowest, highest, r.len()-1)
			}
		})
	}
}

// connect opens a connection to the test database, closed when t ends.
func connect(t *testing.T) *pgx.Conn {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, writertest.Database(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(ctx) })
	return conn
}

// sameRows wants tables a and b to hold the same rows, as many times each.
func sameRows(t *testing.T, conn *pgx.Conn, a, b string) {
	t.Helper()
	for _, pair := range [][2]string{{a, b}, {b, a}} {
		var n int
		q := fmt.Sprintf("SELECT count(*) FROM (SELECT * FROM %s EXCEPT ALL SELECT * FROM %s) d",
			pgx.Identifier{pair[0]}.Sanitize(), pgx.Identifier{pair[1]}.Sanitize())
		if err := conn.QueryRow(context.Background(), q).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != 0 {
			t.Errorf("%d rows of %s are not in %s", n, pair[0], pair[1])
		}
	}
}

// slowValues encodes rows and returns how many of their values the encoder had to leave to
// pgx's type map.
func slowValues(t *testing.T, rows *tableRows, types []colType) int {
	t.Helper()
	rows.rewind()
	r := &copyReader{rows: rows, types: types, typeMap: pgtype.NewMap()}
	if _, err := io.Copy(io.Discard, r); err != nil {
		t.Fatal(err)
	}
	return r.slow
}

// A value of another Go type than normalize gives its column is stored as pgx's CopyFrom
// stores it, and one that pgx cannot encode either fails the COPY with a data error (its
// message is then dead-lettered) that names its row and column, as does a row of too few
// values; the transaction can then be rolled back and the connection used again.
func TestBinaryCopyEncodesOtherGoTypesAsPgx(t *testing.T) {
	ctx := context.Background()
	conn := connect(t)
	columns := []string{"b", "d", "t", "o", "j", "z"}
	types := []colType{colBigint, colDouble, colText, colBoolean, colJSONB, colTimestamptz}
	for _, table := range []string{"odd_bin", "odd_pgx"} {
		_, err := conn.Exec(ctx, "CREATE TEMP TABLE "+table+" (b bigint, d double precision, t text, o boolean, j jsonb, z timestamptz)")
		if err != nil {
			t.Fatal(err)
		}
	}
	target := func(into string) *copyTarget {
		return &copyTarget{into: into, columns: columns, types: types,
			sql: "COPY " + into + " (" + strings.Join(columns, ", ") + ") FROM STDIN (FORMAT binary)"}
	}
	at := time.Date(2026, 12, 5, 1, 2, 3, 456789000, time.UTC)
	var nilInt *int64
	odd := [][]any{
		{int32(-7), float32(1.5), []byte("bytes as text"), pgtype.Bool{Bool: true, Valid: true}, "{\"a\": [1, 2]}", &at},
		{int(1) << 40, int64(3), pgtype.Text{String: "t", Valid: true}, nil, map[string]any{"k": "v"}, pgtype.Timestamptz{Time: at, Valid: true}},
		{nilInt, nil, nil, false, []byte(`null`), at},
	}
	rowsOf := func(rs [][]any) *tableRows { return &tableRows{parts: [][][]any{rs}, n: len(rs)} }

	err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		rows := rowsOf(odd)
		if n, err := copyFrom(ctx, tx, target("odd_bin"), rows); err != nil || n != int64(len(odd)) {
			return fmt.Errorf("binary copy: %d rows, %w", n, err)
		}
		rows.rewind()
		_, err := tx.CopyFrom(ctx, pgx.Identifier{"odd_pgx"}, columns, rows)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	sameRows(t, conn, "odd_bin", "odd_pgx")

	for _, tt := range []struct {
		name string
		row  []any
		want string
	}{
		{"a value pgx cannot encode", []any{struct{}{}, nil, nil, nil, nil, nil}, "row 2 of the COPY: column 1: encode struct {}"},
		{"too few values", []any{int64(1)}, "row 2 of the COPY: 1 values for 6 columns"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			tx, err := conn.Begin(ctx)
			if err != nil {
				t.Fatal(err)
			}
			rows := rowsOf([][]any{{int64(1), 2.0, "x", true, []byte(`{}`), at}, tt.row})
			_, err = copyFrom(ctx, tx, target("odd_bin"), rows)
			if err == nil || !strings.Contains(err.Error(), tt.want) || !dataError(err) {
				t.Errorf("copy: %v, want a data error with %q", err, tt.want)
			}
			if err := tx.Rollback(ctx); err != nil {
				t.Fatalf("rollback: %v", err)
			}
			var n int
			if err := conn.QueryRow(ctx, "SELECT count(*) FROM odd_bin").Scan(&n); err != nil || n != len(odd) {
				t.Errorf("after the failed copy: %d rows, %v; want %d", n, err, len(odd))
			}
		})
	}
}

// TestPgMicros checks the timestamptz encoding around PostgreSQL's epoch.
func TestPgMicros(t *testing.T) {
	tests := []struct {
		name string
		t    time.Time
		want int64
	}{
		{"epoch", time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC), 0},
		{"a microsecond before", time.Date(1999, 12, 31, 23, 59, 59, 999999000, time.UTC), -1},
		{"nanoseconds dropped", time.Date(2000, 1, 1, 0, 0, 1, 999, time.UTC), 1_000_000},
		{"zone ignored", time.Date(2000, 1, 1, 9, 0, 0, 0, time.FixedZone("JST", 9*3600)), 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := pgMicros(tt.t); got != tt.want {
				t.Errorf("pgMicros(%s) = %d, want %d", tt.t, got, tt.want)
			}
		})
	}
}

// The encoder fills one buffer again and again, however many rows a COPY holds: a new
// buffer per fill cost as much allocation as normalizing the messages.
func TestCopyReaderReusesItsBuffer(t *testing.T) {
	const table = "rtc_inbound_rtp_stats"
	rows := &tableRows{}
	for _, m := range writertest.Messages(t, 400) {
		r, err := normalize.Message(m.ExporterType, m.Body)
		if err != nil {
			t.Fatalf("normalize: %v", err)
		}
		if rs := r.Tables[table]; len(rs) > 0 {
			rows.parts = append(rows.parts, rs)
			rows.n += len(rs)
		}
	}
	types, ok := columnTypes(table)
	if !ok || slowValues(t, rows, types) != 0 {
		t.Fatal("the inbound-rtp rows cannot be encoded by the type switch alone")
	}
	var size int64
	allocs := testing.AllocsPerRun(3, func() {
		rows.rewind()
		var err error
		if size, err = io.Copy(io.Discard, &copyReader{rows: rows, types: types}); err != nil {
			t.Fatal(err)
		}
	})
	if size < 10*fill {
		t.Fatalf("%d bytes encoded, want at least %d fills to tell", size, 10)
	}
	if allocs > 3 {
		t.Errorf("%.0f allocations to encode %d bytes in fills of %d, want at most 3", allocs, size, fill)
	}
}

// BenchmarkEncodeRows encodes the rows of simulated messages, every table's, as the COPYs
// of a batch do. They are more than the processor's caches hold, as a batch's rows are when
// the writer encodes them: normalized before, by another goroutine, maybe on another core.
func BenchmarkEncodeRows(b *testing.B) {
	tables := map[string]*tableRows{}
	size := 0
	for _, m := range writertest.Messages(b, 5000) {
		r, err := normalize.Message(m.ExporterType, m.Body)
		if err != nil {
			b.Fatalf("normalize: %v", err)
		}
		size += len(m.Body)
		for table, rs := range r.Tables {
			if tables[table] == nil {
				tables[table] = &tableRows{}
			}
			tables[table].parts = append(tables[table].parts, rs)
			tables[table].n += len(rs)
		}
	}
	m := pgtype.NewMap()
	b.SetBytes(int64(size))
	b.ReportAllocs()
	for b.Loop() {
		for table, rows := range tables {
			types, ok := columnTypes(table)
			if !ok {
				b.Fatalf("%s: a column type the encoder does not know", table)
			}
			rows.rewind()
			if _, err := io.Copy(io.Discard, &copyReader{rows: rows, types: types, typeMap: m}); err != nil {
				b.Fatal(err)
			}
		}
	}
}
