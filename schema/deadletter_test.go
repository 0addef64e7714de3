package schema

import (
	"context"
	"encoding/json"
	"os"
	"testing"
)

// TestDeadLetterElementsKeepOldRows migrates a database that has dead letters of whole
// messages from before 0004_element_dead_letters: they stay, with element NULL and their
// reason, and afterwards each message and each element of a message is kept once.
func TestDeadLetterElementsKeepOldRows(t *testing.T) {
	ctx := context.Background()
	c := freshConn(t, postgresURL(t))
	ms := allMigrations(t)
	if len(ms) < 4 || ms[3].Name != "element_dead_letters" {
		t.Fatalf("migration 4 is %v, want element_dead_letters", ms[3:])
	}
	if _, err := migrateLocked(ctx, c, ms[:3], Options{}.withDefaults()); err != nil {
		t.Fatalf("migrate to version 3: %v", err)
	}
	const old = `INSERT INTO kohaku_dead_letter (stream_seq, subject, body, error) VALUES ($1, 'kohaku.stats.connection.user-agent', '{', $2)`
	mustExec(t, c, old, int64(1), "normalize: unexpected end of JSON input")
	mustExec(t, c, old, int64(2), "rejected by the database: ERROR: index row size 2720 exceeds btree version 4 maximum 2704 (SQLSTATE 54000)")
	if res := mustMigrate(t, c, Options{}); len(res.Applied) != len(ms)-3 {
		t.Fatalf("applied %v, want versions 4 and later", versions(res.Applied))
	}

	const insert = `INSERT INTO kohaku_dead_letter (stream_seq, subject, body, error, element, connection_id, reason)
VALUES ($1, 'kohaku.stats.connection.user-agent', '{}', 'x', $2, '01JD3K9Q2W8E5R7T1Y4U6I0C11', $3)
ON CONFLICT DO NOTHING`
	for range 2 { // as a redelivery would
		mustExec(t, c, insert, int64(1), 0, "nul")
		mustExec(t, c, insert, int64(3), 0, "nul")
		mustExec(t, c, insert, int64(3), 5, "conflict")
		mustExec(t, c, insert, int64(3), nil, "decode")
		mustExec(t, c, insert, int64(2), nil, "decode")
	}
	rows, err := c.Query(ctx, `SELECT stream_seq, coalesce(element, -1), reason FROM kohaku_dead_letter ORDER BY 1, 2`)
	if err != nil {
		t.Fatal(err)
	}
	type row struct {
		seq     int64
		element int
		reason  string
	}
	var got []row
	for rows.Next() {
		var r row
		if err := rows.Scan(&r.seq, &r.element, &r.reason); err != nil {
			t.Fatal(err)
		}
		got = append(got, r)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	want := []row{{1, -1, "decode"}, {1, 0, "nul"}, {2, -1, "database"}, {3, -1, "decode"}, {3, 0, "nul"}, {3, 5, "conflict"}}
	if len(got) != len(want) {
		t.Fatalf("dead letters %v, want %v", got, want)
	}
	for k := range want {
		if got[k] != want[k] {
			t.Errorf("dead letter %d: %v, want %v", k, got[k], want[k])
		}
	}
}

// numbersFile holds numbers at the edges of PostgreSQL's numeric with normalize's verdict
// on each, kept up to date by a test of that package.
const numbersFile = "../pkg/normalize/testdata/edgecases/numbers.json"

// TestJSONBTakesTheNumbersNormalizeKeeps asks PostgreSQL whether jsonb takes each number of
// numbersFile: exactly those that normalize says fit may be stored, for normalize sets
// apart the elements with the others instead of letting the database refuse their batch.
func TestJSONBTakesTheNumbersNormalizeKeeps(t *testing.T) {
	data, err := os.ReadFile(numbersFile)
	if err != nil {
		t.Fatal(err)
	}
	var cases []struct {
		Number string `json:"number"`
		Fits   bool   `json:"fits"`
	}
	if err := json.Unmarshal(data, &cases); err != nil {
		t.Fatalf("%s: %v", numbersFile, err)
	}
	if len(cases) == 0 {
		t.Fatalf("%s holds no number", numbersFile)
	}
	c := freshConn(t, postgresURL(t))
	for _, tc := range cases {
		var got string
		err := c.QueryRow(context.Background(), "SELECT ($1::text::jsonb)::text", `{"n":`+tc.Number+`}`).Scan(&got)
		if (err == nil) != tc.Fits {
			t.Errorf("jsonb of %s: %v; normalize says it fits: %t", tc.Number, err, tc.Fits)
		}
	}
}
