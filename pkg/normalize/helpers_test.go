package normalize

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	"kohaku/pkg/sora"
	"kohaku/testsupport/fixtures"
)

// largestBody returns the exporter type and body of the largest of testBodies.
func largestBody(t testing.TB) (string, []byte) {
	t.Helper()
	var body []byte
	var typ string
	for _, fx := range testBodies(t) {
		if len(fx.Body) > len(body) {
			body, typ = fx.Body, fx.ExporterType
		}
	}
	return typ, body
}

// testBodies returns every captured fixture of both feeds and the hand-written bodies in
// testdata/.
func testBodies(t testing.TB) []fixtures.Fixture {
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
	names, err := filepath.Glob("testdata/*.json")
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range names {
		body, err := os.ReadFile(n)
		if err != nil {
			t.Fatal(err)
		}
		var head struct{ Type string }
		if err := json.Unmarshal(body, &head); err != nil {
			t.Fatalf("%s: %v", n, err)
		}
		all = append(all, fixtures.Fixture{Name: "testdata/" + filepath.Base(n), ExporterType: head.Type, Body: body})
	}
	return all
}

// canon returns a text for the decoded JSON value v that is equal for two values exactly
// when they are equal as JSON: object keys sorted, numbers compared by exact value.
func canon(v any) string {
	var sb strings.Builder
	writeCanon(&sb, v)
	return sb.String()
}

func writeCanon(sb *strings.Builder, v any) {
	switch x := v.(type) {
	case nil:
		sb.WriteString("null")
	case bool:
		sb.WriteString(strconv.FormatBool(x))
	case string:
		sb.WriteString(strconv.Quote(x))
	case json.Number:
		sb.WriteString("#" + canonicalNumber([]byte(x.String())))
	case []any:
		sb.WriteString("[")
		for k, e := range x {
			if k > 0 {
				sb.WriteString(",")
			}
			writeCanon(sb, e)
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
			writeCanon(sb, x[k])
		}
		sb.WriteString("}")
	default:
		panic(fmt.Sprintf("canon: unexpected %T", v))
	}
}

// decodeAny decodes JSON keeping numbers exact.
func decodeAny(t testing.TB, data []byte) any {
	t.Helper()
	var v any
	if err := decodeJSON(data, &v); err != nil {
		t.Fatalf("decode %s: %v", truncate(string(data)), err)
	}
	return v
}

// inputElements returns the canonical text of each stats element of body, sorted.
func inputElements(t testing.TB, body []byte) []string {
	t.Helper()
	env, ok := decodeAny(t, body).(map[string]any)
	if !ok {
		t.Fatalf("body is not an object")
	}
	stats, _ := env["stats"].([]any)
	out := make([]string, 0, len(stats))
	for _, e := range stats {
		out = append(out, canon(e))
	}
	sort.Strings(out)
	return out
}

// restoredElements restores every row of rows and returns their canonical texts, sorted.
func restoredElements(t testing.TB, rows *Rows) []string {
	t.Helper()
	var out []string
	for table, rs := range rows.Tables {
		for _, row := range rs {
			out = append(out, restoreCanon(t, table, row))
		}
	}
	sort.Strings(out)
	return out
}

// restoreCanon restores a row and returns the canonical text of the element, going through
// encoding/json as a consumer of restore would.
func restoreCanon(t testing.TB, table string, row []any) string {
	t.Helper()
	m, err := restore(table, row)
	if err != nil {
		t.Fatalf("restore(%s): %v", table, err)
	}
	data, err := json.Marshal(m)
	if err != nil {
		t.Fatalf("marshal restored %s element: %v", table, err)
	}
	return canon(decodeAny(t, data))
}

// checkLossless fails unless the rows of body and its rejected elements give back exactly
// its stats elements, each once, and each row's origin is the element it holds.
func checkLossless(t testing.TB, body []byte, rows *Rows) {
	t.Helper()
	want, got := inputElements(t, body), restoredElements(t, rows)
	for _, r := range rows.Rejected {
		got = append(got, canon(decodeAny(t, r.Raw)))
	}
	sort.Strings(got)
	if !slices.Equal(want, got) {
		for _, w := range want {
			if !slices.Contains(got, w) {
				t.Errorf("element not restored:\n%s", w)
			}
		}
		for _, g := range got {
			if !slices.Contains(want, g) {
				t.Errorf("restored element not in the input:\n%s", g)
			}
		}
		t.Fatalf("restored %d elements, want %d", len(got), len(want))
	}
	indexes := map[int]bool{}
	for _, r := range rows.Rejected {
		indexes[r.Index] = true
	}
	for table, rs := range rows.Tables {
		origins := rows.Origins[table]
		if len(origins) != len(rs) {
			t.Fatalf("%s: %d rows, %d origins", table, len(rs), len(origins))
		}
		for k, row := range rs {
			o := origins[k]
			if got, want := restoreCanon(t, table, row), canon(decodeAny(t, o.Raw(body))); got != want {
				t.Fatalf("%s row %d restores to\n%s\nits origin stats[%d] is\n%s", table, k, got, o.Index, want)
			}
			if table != TableErlangVM && indexes[o.Index] {
				t.Fatalf("%s row %d: stats[%d] has two rows, or a row and a rejection", table, k, o.Index)
			}
			indexes[o.Index] = true
		}
	}
	if len(indexes) != len(want) {
		t.Fatalf("rows and rejections name %d elements, the body has %d", len(indexes), len(want))
	}
}

// userAgentBody returns a connection.user-agent body whose stats array is stats (JSON).
func userAgentBody(connectionID, stats string) []byte {
	return []byte(`{"type":"` + sora.TypeUserAgent + `","id":"01JD3K9Q2W8E5R7T1Y4U6I0OPB",` +
		`"timestamp":"2026-11-29T06:40:00.5Z","label":"WebRTC SFU Sora","version":"2025.1.0",` +
		`"node_name":"sora@127.0.0.1","multistream":false,"simulcast":true,"spotlight":false,` +
		`"role":"recvonly","channel_id":"edge","client_id":"c","session_id":"01JD3K9Q2W8E5R7T1Y4U6I0S66",` +
		`"connection_id":"` + connectionID + `","stats":` + stats + `}`)
}

// columnValue returns the value of the named column of row in table.
func columnValue(t testing.TB, table string, row []any, name string) any {
	t.Helper()
	k := slices.Index(Columns(table), name)
	if k < 0 {
		t.Fatalf("%s has no column %s", table, name)
	}
	return row[k]
}

// extraOf returns the decoded extra (or stats) column of row.
func extraOf(t testing.TB, table string, row []any) map[string]any {
	t.Helper()
	l := tables.byName[table]
	if row[l.extra] == nil {
		return nil
	}
	m, ok := decodeAny(t, row[l.extra].([]byte)).(map[string]any)
	if !ok {
		t.Fatalf("%s extra is not an object", table)
	}
	return m
}
