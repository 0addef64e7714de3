package normalize

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"kohaku/pkg/fixtures"
	"kohaku/pkg/sora"
)

// testDatabase creates a fresh database on the PostgreSQL of KOHAKU_TEST_DATABASE_URL,
// drops it when the test ends, and returns a connection to it. Without a server it skips
// the test, or fails it when CI is set.
func testDatabase(t *testing.T) *pgx.Conn {
	t.Helper()
	base := os.Getenv("KOHAKU_TEST_DATABASE_URL")
	if base == "" {
		base = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	admin, err := pgx.Connect(ctx, base)
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("PostgreSQL at KOHAKU_TEST_DATABASE_URL: %v", err)
		}
		t.Skipf("no PostgreSQL at KOHAKU_TEST_DATABASE_URL (%v); set CI to make this fail", err)
	}
	var suffix [6]byte
	_, _ = rand.Read(suffix[:])
	name := "kohaku_test_" + hex.EncodeToString(suffix[:])
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		admin.Close(ctx)
		t.Fatalf("create database: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if _, err := admin.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			t.Errorf("drop database %s: %v", name, err)
		}
		admin.Close(ctx)
	})

	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	u.Path = "/" + name
	conn, err := pgx.Connect(ctx, u.String())
	if err != nil {
		t.Fatalf("connect to %s: %v", name, err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

func TestCopyIntoSchema(t *testing.T) {
	conn := testDatabase(t)
	ctx := context.Background()
	// The generated tables and the migrations after them, which change sora_connection.
	files, err := filepath.Glob(filepath.Join(filepath.Dir(schemaPath), "[0-9][0-9][0-9][0-9]_*.sql"))
	if err != nil || len(files) < 3 {
		t.Fatalf("migrations next to %s: %v %v", schemaPath, files, err)
	}
	for _, f := range files {
		ddl, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		// Twice: the migration runner may run a file on a database that has its tables.
		for range 2 {
			if _, err := conn.Exec(ctx, string(ddl)); err != nil {
				t.Fatalf("execute %s: %v", f, err)
			}
		}
	}
	checkColumnTypes(t, conn)
	checkReservedColumns(t, conn)

	// Every fixture, and every edge case under a connection of its own.
	bodies := testBodies(t)
	for k, ec := range edgeCases() {
		bodies = append(bodies, fixtures.Fixture{
			Name:         ec.name,
			ExporterType: sora.TypeUserAgent,
			Body:         userAgentBody(fmt.Sprintf("01JD3K9Q2W8E5R7T1Y4U6IE%03d", k), ec.stats),
		})
	}
	want := map[string]int{}
	var wantElements []string
	connections := 0
	for _, fx := range bodies {
		rows, err := Message(fx.ExporterType, fx.Body)
		if err != nil {
			t.Fatalf("%s: Message: %v", fx.Name, err)
		}
		wantElements = append(wantElements, inputElements(t, fx.Body)...)
		for table, rs := range rows.Tables {
			n, err := conn.CopyFrom(ctx, pgx.Identifier{table}, Columns(table), pgx.CopyFromRows(rs))
			if err != nil {
				t.Fatalf("%s: copy %d rows into %s: %v", fx.Name, len(rs), table, err)
			}
			if int(n) != len(rs) {
				t.Errorf("%s: copied %d rows into %s, want %d", fx.Name, n, table, len(rs))
			}
			want[table] += len(rs)
		}
		if c := rows.Connection; c != nil {
			connections++
			_, err := conn.Exec(ctx, `INSERT INTO sora_connection (connection_id, channel_id, session_id, client_id,
				role, multistream, simulcast, spotlight, label, version, node_name, first_seen, last_seen, extra,
				group_id, bundle_id, feed)
				VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $12, $13, $14, $15, $16)
				ON CONFLICT (connection_id) DO UPDATE SET last_seen = excluded.last_seen, extra = excluded.extra`,
				c.ConnectionID, c.ChannelID, c.SessionID, c.ClientID, c.Role, c.Multistream, c.Simulcast,
				c.Spotlight, c.Label, c.Version, c.NodeName, c.Time, c.Extra, c.GroupID, c.BundleID, c.Feed)
			if err != nil {
				t.Fatalf("%s: insert the connection: %v", fx.Name, err)
			}
		}
	}
	if connections == 0 {
		t.Error("no body gave a connection")
	}

	// Read every row back: the counts match, and the rows give back every element.
	var gotElements []string
	for _, table := range StatsTables() {
		var n int
		if err := conn.QueryRow(ctx, "SELECT count(*) FROM "+table).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != want[table] {
			t.Errorf("%s: %d rows, want %d", table, n, want[table])
		}
		gotElements = append(gotElements, readBack(t, conn, table)...)
	}
	sort.Strings(wantElements)
	sort.Strings(gotElements)
	if !slices.Equal(gotElements, wantElements) {
		t.Errorf("the database gave back %d elements, want %d equal to the input", len(gotElements), len(wantElements))
		for _, w := range wantElements {
			if !slices.Contains(gotElements, w) {
				t.Errorf("not given back: %s", w)
			}
		}
	}
}

// readBack selects every row of table, jsonb as text so that numbers stay exact, and
// returns the canonical texts of the elements Restore makes of them.
func readBack(t *testing.T, conn *pgx.Conn, table string) []string {
	t.Helper()
	cols, types := Columns(table), ColumnTypes(table)
	sel := make([]string, len(cols))
	for k, c := range cols {
		sel[k] = pgx.Identifier{c}.Sanitize()
		if types[k] == "jsonb" {
			sel[k] += "::text"
		}
	}
	rows, err := conn.Query(context.Background(), "SELECT "+strings.Join(sel, ", ")+" FROM "+table)
	if err != nil {
		t.Fatalf("select %s: %v", table, err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		vals, err := rows.Values()
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, restoreCanon(t, table, vals))
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// checkColumnTypes compares the tables' columns in the database with Columns and
// ColumnTypes.
func checkColumnTypes(t *testing.T, conn *pgx.Conn) {
	t.Helper()
	for _, table := range StatsTables() {
		rows, err := conn.Query(context.Background(), `SELECT column_name, data_type FROM information_schema.columns
			WHERE table_name = $1 ORDER BY ordinal_position`, table)
		if err != nil {
			t.Fatal(err)
		}
		var names, types []string
		for rows.Next() {
			var n, ty string
			if err := rows.Scan(&n, &ty); err != nil {
				t.Fatal(err)
			}
			names = append(names, n)
			types = append(types, strings.Replace(ty, "timestamp with time zone", "timestamptz", 1))
		}
		rows.Close()
		if !slices.Equal(names, Columns(table)) || !slices.Equal(types, ColumnTypes(table)) {
			t.Errorf("%s in the database:\n%v\n%v\nwant\n%v\n%v", table, names, types, Columns(table), ColumnTypes(table))
		}
	}
}

// checkReservedColumns checks reservedColumns against the server's list of keywords that
// cannot name a column unquoted.
func checkReservedColumns(t *testing.T, conn *pgx.Conn) {
	t.Helper()
	var names []string
	for _, table := range StatsTables() {
		names = append(names, Columns(table)...)
	}
	rows, err := conn.Query(context.Background(), `SELECT word FROM pg_get_keywords() WHERE catcode IN ('R', 'T') AND word = ANY($1)`, names)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	n := 0
	for rows.Next() {
		var w string
		if err := rows.Scan(&w); err != nil {
			t.Fatal(err)
		}
		n++
		if !reservedColumns[w] {
			t.Errorf("column %s is a reserved word: add it to reservedColumns", w)
		}
	}
	if n != len(reservedColumns) {
		t.Errorf("reservedColumns has %d words, the server reserves %d of the column names", len(reservedColumns), n)
	}
}
