package schema

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"kohaku/pkg/normalize"
)

// promoted is a catalog column that the previous release's tables lack: a member that the
// writer of that release kept in extra.
type promoted struct {
	table, column, member string
	index                 int // in normalize.Columns(table)
}

// TestUpgradeFromThePreviousReleaseTypesPromotedMembers creates a database with the
// migrations of the previous release (released.sha256, whose files a test pins), stores
// every fixture and edge case as that release's writer did (each member without a column
// there in extra), upgrades it, and stores them again a week later: the new rows hold each
// promoted member in its column, and the rows from before keep it, unchanged, in extra. On
// TimescaleDB the old rows are in compressed chunks when the columns are added.
func TestUpgradeFromThePreviousReleaseTypesPromotedMembers(t *testing.T) {
	tests := []struct {
		name     string
		url      func(testing.TB) string
		compress bool
	}{
		{name: "PostgreSQL", url: postgresURL},
		{name: "TimescaleDB with compressed chunks", url: timescaleURL, compress: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			testUpgrade(t, freshConn(t, tt.url(t)), tt.compress)
		})
	}
}

func testUpgrade(t *testing.T, c *pgx.Conn, compress bool) {
	ctx := context.Background()
	rel, all := releasedMigrations(t), allMigrations(t)
	res, err := migrateLocked(ctx, c, rel, Options{}.withDefaults())
	if err != nil {
		t.Fatalf("migrate to the released version %d: %v", len(rel), err)
	}
	ps := promotedColumns(t, c)
	if len(ps) == 0 {
		t.Logf("the previous release already has every column of the catalog: nothing promoted to check")
	}
	for _, p := range ps {
		t.Logf("promoted since the previous release: %s.%s (%s)", p.table, p.column, p.member)
	}

	// The previous release's writer: the promoted members in extra, the columns it knew.
	const later = 7 * 24 * time.Hour
	moved := map[promoted]int{}  // rows whose member went to extra
	stayed := map[promoted]int{} // rows whose member is in extra in both releases (it does not fit the column)
	var newest time.Time
	bodies := roundTripBodies(t)
	for _, b := range bodies {
		rows, err := normalize.Message(b.ExporterType, b.Body)
		if err != nil {
			t.Fatalf("%s: Message: %v", b.Name, err)
		}
		for table, rs := range rows.Tables {
			cols := normalize.Columns(table)
			var mine []promoted
			for _, p := range ps {
				if p.table == table {
					mine = append(mine, p)
				}
			}
			old := make([][]any, len(rs))
			for k, r := range rs {
				if at := r[0].(time.Time); at.After(newest) {
					newest = at
				}
				old[k] = oldRow(t, cols, r, mine, moved, stayed)
			}
			copyRows(t, c, table, oldColumns(cols, mine), old)
		}
	}
	for _, p := range ps {
		t.Logf("%s: %d rows of the previous release hold %s in extra", p.table, moved[p]+stayed[p], p.member)
		if moved[p] == 0 {
			t.Errorf("no fixture or edge case has %s in %s: the upgrade of that column is not shown", p.member, p.table)
		}
	}
	if compress && res.TimescaleDB {
		compressAll(t, c, ps)
	}

	res = mustMigrate(t, c, Options{})
	if got, want := versions(res.Applied), versions(all[len(rel):]); !slices.Equal(got, want) {
		t.Fatalf("the upgrade applied %v, want %v", got, want)
	}
	if left := promotedColumns(t, c); len(left) > 0 {
		t.Fatalf("after the upgrade the tables still lack %v", left)
	}

	// This release's writer, a week later.
	for _, b := range bodies {
		rows, err := normalize.Message(b.ExporterType, b.Body)
		if err != nil {
			t.Fatalf("%s: Message: %v", b.Name, err)
		}
		for table, rs := range rows.Tables {
			for _, r := range rs {
				r[0] = r[0].(time.Time).Add(later)
			}
			copyRows(t, c, table, normalize.Columns(table), rs)
		}
	}

	for _, p := range ps {
		var oldInExtra, oldInColumn, newInColumn, newInExtra, same int
		q := fmt.Sprintf(`SELECT
	count(*) FILTER (WHERE time <= $1 AND %[1]s IS NULL AND extra ? $2),
	count(*) FILTER (WHERE time <= $1 AND %[1]s IS NOT NULL),
	count(*) FILTER (WHERE time > $1 AND %[1]s IS NOT NULL),
	count(*) FILTER (WHERE time > $1 AND extra ? $2),
	(SELECT count(*) FROM %[2]s o JOIN %[2]s n USING (connection_id, stats_id)
		WHERE n.time = o.time + $3::interval AND o.extra -> $2 = to_jsonb(n.%[1]s))
FROM %[2]s`, pgx.Identifier{p.column}.Sanitize(), pgx.Identifier{p.table}.Sanitize())
		if err := c.QueryRow(ctx, q, newest, p.member, interval(later)).Scan(&oldInExtra, &oldInColumn, &newInColumn, &newInExtra, &same); err != nil {
			t.Fatalf("%s.%s: %v", p.table, p.column, err)
		}
		n := moved[p]
		if oldInExtra != n+stayed[p] || oldInColumn != 0 {
			t.Errorf("%s: rows from before the upgrade: %d hold %s in extra and %d in %s, want %d and 0",
				p.table, oldInExtra, p.member, oldInColumn, p.column, n+stayed[p])
		}
		if newInColumn != n || newInExtra != stayed[p] {
			t.Errorf("%s: rows from after the upgrade: %d hold %s in %s and %d in extra, want %d and %d",
				p.table, newInColumn, p.member, p.column, newInExtra, n, stayed[p])
		}
		if same != n {
			t.Errorf("%s: %d rows after the upgrade hold in %s the value their twin from before holds in extra, want %d",
				p.table, same, p.column, n)
		}
	}
}

// promotedColumns returns the catalog's columns that the tables of c lack.
func promotedColumns(t testing.TB, c *pgx.Conn) []promoted {
	t.Helper()
	var out []promoted
	for _, table := range normalize.StatsTables() {
		have := map[string]bool{}
		for _, col := range dbColumns(t, c, table) {
			have[col] = true
		}
		if len(have) == 0 {
			t.Fatalf("the database has no table %s", table)
		}
		for k, col := range normalize.Columns(table) {
			if !have[col] {
				out = append(out, promoted{table: table, column: col, member: memberName(col), index: k})
			}
		}
	}
	return out
}

// dbColumns returns the columns of table in the database, in their order.
func dbColumns(t testing.TB, c *pgx.Conn, table string) []string {
	t.Helper()
	return textColumn(t, c, `SELECT column_name::text FROM information_schema.columns
		WHERE table_name = $1 AND table_schema = current_schema() ORDER BY ordinal_position`, table)
}

// memberName is the camelCase member that normalize names the column after
// (packets_received_with_ect1 -> packetsReceivedWithEct1).
func memberName(column string) string {
	parts := strings.Split(column, "_")
	for k := 1; k < len(parts); k++ {
		if parts[k] != "" {
			parts[k] = strings.ToUpper(parts[k][:1]) + parts[k][1:]
		}
	}
	return strings.Join(parts, "")
}

// oldRow returns r as the previous release's writer made it: without the promoted
// columns, whose values are members of extra. It counts in moved the members it moved, and
// in stayed those that r has in extra already.
func oldRow(t testing.TB, cols []string, r []any, ps []promoted, moved, stayed map[promoted]int) []any {
	t.Helper()
	if len(ps) == 0 {
		return r
	}
	x := slices.Index(cols, "extra")
	extra := map[string]json.RawMessage{}
	if r[x] != nil {
		if err := json.Unmarshal(r[x].([]byte), &extra); err != nil {
			t.Fatalf("extra %s: %v", r[x], err)
		}
	}
	for _, p := range ps {
		v := r[p.index]
		_, inExtra := extra[p.member]
		switch {
		case v == nil && inExtra:
			stayed[p]++
			continue
		case v == nil:
			continue
		case inExtra:
			t.Fatalf("%s is both in %s and in extra", p.member, p.column)
		}
		raw, ok := v.([]byte)
		if !ok {
			var err error
			if raw, err = json.Marshal(v); err != nil {
				t.Fatal(err)
			}
		}
		extra[p.member] = raw
		moved[p]++
	}
	out := make([]any, 0, len(r))
	for k, v := range r {
		if slices.ContainsFunc(ps, func(p promoted) bool { return p.index == k }) {
			continue
		}
		if k == x && len(extra) > 0 {
			b, err := json.Marshal(extra)
			if err != nil {
				t.Fatal(err)
			}
			v = b
		}
		out = append(out, v)
	}
	return out
}

// oldColumns returns cols without the promoted ones.
func oldColumns(cols []string, ps []promoted) []string {
	return slices.DeleteFunc(slices.Clone(cols), func(col string) bool {
		return slices.ContainsFunc(ps, func(p promoted) bool { return p.column == col })
	})
}

// compressAll compresses every chunk of the tables of ps, as the compression policy does
// to old chunks, so that the upgrade adds the columns to compressed hypertables.
func compressAll(t testing.TB, c *pgx.Conn, ps []promoted) {
	t.Helper()
	ext, err := timescaleSchema(context.Background(), c)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range ps {
		var n int
		q := "SELECT count(" + ext + ".compress_chunk(ch, true)) FROM " + ext + ".show_chunks($1::regclass) ch"
		if err := c.QueryRow(context.Background(), q, p.table).Scan(&n); err != nil {
			t.Fatalf("compress the chunks of %s: %v", p.table, err)
		}
		if n == 0 {
			t.Errorf("%s has no chunk to compress", p.table)
		}
	}
}
