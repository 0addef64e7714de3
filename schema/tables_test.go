package schema

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/big"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"kohaku/pkg/normalize"
	"kohaku/pkg/sora"
	"kohaku/schema/internal/columns"
	"kohaku/testsupport/fixtures"
)

// edgeCasesFile holds normalize's edge cases (stats arrays that browsers or later versions
// could send), kept up to date by a test of that package.
const edgeCasesFile = "../pkg/normalize/testdata/edgecases/stats.json"

// TestNormalizedRowsRoundTripThroughTheTables copies what normalize makes of every fixture of
// both feeds and every edge case into the migrated tables by COPY, and reads it back: every
// column takes its value, and the database gives back exactly the rows it was given. With
// normalize's own test that rows give back their elements, this proves storage lossless.
func TestNormalizedRowsRoundTripThroughTheTables(t *testing.T) {
	ctx := context.Background()
	c := freshConn(t, postgresURL(t))
	mustMigrate(t, c, Options{})
	checkColumnTypes(t, c)
	checkReservedColumns(t, c)

	want := map[string][]string{}
	for _, b := range roundTripBodies(t) {
		rows, err := normalize.Message(b.ExporterType, b.Body)
		if err != nil {
			t.Fatalf("%s: Message: %v", b.Name, err)
		}
		for table, rs := range rows.Tables {
			n, err := c.CopyFrom(ctx, pgx.Identifier{table}, normalize.Columns(table), pgx.CopyFromRows(rs))
			if err != nil {
				t.Fatalf("%s: copy %d rows into %s: %v", b.Name, len(rs), table, err)
			}
			if int(n) != len(rs) {
				t.Errorf("%s: copied %d rows into %s, want %d", b.Name, n, table, len(rs))
			}
			for _, r := range rs {
				want[table] = append(want[table], canonRow(t, table, r))
			}
		}
	}
	for _, table := range normalize.StatsTables() {
		got := readBack(t, c, table)
		sort.Strings(got)
		sort.Strings(want[table])
		if !slices.Equal(got, want[table]) {
			t.Errorf("%s: the database gave back %d rows, want %d equal to those copied", table, len(got), len(want[table]))
			for _, w := range want[table] {
				if !slices.Contains(got, w) {
					t.Errorf("%s: not given back: %s", table, w)
				}
			}
		}
	}
}

// roundTripBodies returns the fixtures of both feeds and every edge case in a connection of
// its own.
func roundTripBodies(t *testing.T) []fixtures.Fixture {
	t.Helper()
	all, err := fixtures.All()
	if err != nil {
		t.Fatal(err)
	}
	hooks, err := fixtures.Webhooks()
	if err != nil {
		t.Fatal(err)
	}
	all = append(all, hooks...)
	data, err := os.ReadFile(edgeCasesFile)
	if err != nil {
		t.Fatal(err)
	}
	var edges []struct {
		Name  string          `json:"name"`
		Stats json.RawMessage `json:"stats"`
	}
	if err := json.Unmarshal(data, &edges); err != nil {
		t.Fatalf("%s: %v", edgeCasesFile, err)
	}
	if len(edges) == 0 {
		t.Fatalf("%s holds no edge case", edgeCasesFile)
	}
	for k, e := range edges {
		id := fmt.Sprintf("01JD3K9Q2W8E5R7T1Y4U6IE%03d", k)
		body := `{"type":"connection.user-agent","timestamp":"2026-11-28T21:30:00.25Z","label":"l","version":"v",` +
			`"node_name":"n","multistream":false,"simulcast":false,"spotlight":false,"role":"sendrecv",` +
			`"channel_id":"edge","client_id":"c","session_id":"` + id + `","connection_id":"` + id + `","stats":` +
			string(e.Stats) + `}`
		all = append(all, fixtures.Fixture{Name: e.Name, ExporterType: sora.TypeUserAgent, Body: []byte(body)})
	}
	return all
}

// readBack selects every row of table, jsonb as text so that numbers stay exact, in the
// canonical form of canonRow.
func readBack(t *testing.T, c *pgx.Conn, table string) []string {
	t.Helper()
	cols, types := normalize.Columns(table), normalize.ColumnTypes(table)
	sel := make([]string, len(cols))
	for k, col := range cols {
		sel[k] = pgx.Identifier{col}.Sanitize()
		if types[k] == "jsonb" {
			sel[k] += "::text"
		}
	}
	rows, err := c.Query(context.Background(), "SELECT "+strings.Join(sel, ", ")+" FROM "+table)
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
		out = append(out, canonRow(t, table, vals))
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// canonRow returns a text for a row of table that is equal for two rows exactly when they
// hold the same values: times in UTC, jsonb compared as JSON with numbers by exact value.
func canonRow(t *testing.T, table string, row []any) string {
	t.Helper()
	types := normalize.ColumnTypes(table)
	parts := make([]string, len(row))
	for k, v := range row {
		if types[k] == "jsonb" && v != nil {
			parts[k] = canonJSON(t, v)
			continue
		}
		switch x := v.(type) {
		case nil:
			parts[k] = "NULL"
		case time.Time:
			parts[k] = x.UTC().Format(time.RFC3339Nano)
		case float64:
			parts[k] = "f" + strconv.FormatFloat(x, 'g', -1, 64)
		case int64:
			parts[k] = "i" + strconv.FormatInt(x, 10)
		case string:
			parts[k] = strconv.Quote(x)
		case bool:
			parts[k] = strconv.FormatBool(x)
		default:
			t.Fatalf("%s column %d: unexpected %T", table, k, v)
		}
	}
	return strings.Join(parts, "|")
}

// canonJSON returns the canonical text of a JSON value given as text or bytes.
func canonJSON(t *testing.T, v any) string {
	t.Helper()
	var data []byte
	switch x := v.(type) {
	case string:
		data = []byte(x)
	case []byte:
		data = x
	case json.RawMessage:
		data = x
	default:
		t.Fatalf("jsonb value of type %T", v)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var decoded any
	if err := dec.Decode(&decoded); err != nil {
		t.Fatalf("jsonb value %s: %v", data, err)
	}
	var sb strings.Builder
	writeCanon(t, &sb, decoded)
	return sb.String()
}

func writeCanon(t *testing.T, sb *strings.Builder, v any) {
	switch x := v.(type) {
	case nil:
		sb.WriteString("null")
	case bool:
		sb.WriteString(strconv.FormatBool(x))
	case string:
		sb.WriteString(strconv.Quote(x))
	case json.Number:
		// jsonb writes 2e-7 as 0.0000002: compare numbers by value.
		r, ok := new(big.Rat).SetString(x.String())
		if !ok {
			t.Fatalf("number %s", x)
		}
		sb.WriteString("#" + r.RatString())
	case []any:
		sb.WriteString("[")
		for k, e := range x {
			if k > 0 {
				sb.WriteString(",")
			}
			writeCanon(t, sb, e)
		}
		sb.WriteString("]")
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		sb.WriteString("{")
		for n, k := range keys {
			if n > 0 {
				sb.WriteString(",")
			}
			sb.WriteString(strconv.Quote(k) + ":")
			writeCanon(t, sb, x[k])
		}
		sb.WriteString("}")
	default:
		t.Fatalf("canon: unexpected %T", v)
	}
}

// checkColumnTypes compares the tables' columns in the database with those the migrations
// create as go generate reads them, in the tables' order, and with normalize's Columns and
// ColumnTypes, in any order: a column added after the first release is last in its table
// and where its dictionary has it in COPY order.
func checkColumnTypes(t *testing.T, c *pgx.Conn) {
	t.Helper()
	migrated := migratedColumns(t)
	catalog := columns.Catalog()
	for _, table := range normalize.StatsTables() {
		rows, err := c.Query(context.Background(), `SELECT column_name, data_type FROM information_schema.columns
			WHERE table_name = $1 AND table_schema = current_schema() ORDER BY ordinal_position`, table)
		if err != nil {
			t.Fatal(err)
		}
		var got []columns.Column
		for rows.Next() {
			var n, ty string
			if err := rows.Scan(&n, &ty); err != nil {
				t.Fatal(err)
			}
			got = append(got, columns.Column{Name: n, Type: strings.Replace(ty, "timestamp with time zone", "timestamptz", 1)})
		}
		rows.Close()
		if !slices.Equal(got, migrated[table]) {
			t.Errorf("%s in the database:\n%v\nwant, as the migrations read:\n%v", table, got, migrated[table])
		}
		byName := func(a, b columns.Column) int { return strings.Compare(a.Name, b.Name) }
		got, want := slices.SortedFunc(slices.Values(got), byName), slices.SortedFunc(slices.Values(catalog[table]), byName)
		if !slices.Equal(got, want) {
			t.Errorf("%s in the database:\n%v\nwant normalize's columns:\n%v", table, got, want)
		}
	}
}

// checkReservedColumns checks that every column name the server reserves (it cannot name a
// column unquoted) is quoted in the migrations that create the tables.
func checkReservedColumns(t *testing.T, c *pgx.Conn) {
	t.Helper()
	var names []string
	for _, table := range normalize.StatsTables() {
		names = append(names, normalize.Columns(table)...)
	}
	rows, err := c.Query(context.Background(), `SELECT word FROM pg_get_keywords() WHERE catcode IN ('R', 'T') AND word = ANY($1)`, names)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	ms, err := Migrations()
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for rows.Next() {
		var w string
		if err := rows.Scan(&w); err != nil {
			t.Fatal(err)
		}
		n++
		quoted := false
		for _, m := range ms {
			quoted = quoted || strings.Contains(m.SQL, `"`+w+`"`)
		}
		if !quoted {
			t.Errorf("column %s is a reserved word and is not quoted in the migrations", w)
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if n == 0 {
		t.Error("no column name is a reserved word: the check checked nothing (binary should be)")
	}
}
