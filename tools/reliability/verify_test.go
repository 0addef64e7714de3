package reliability

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"kohaku/pkg/normalize"
)

// rowKey is the natural key of a stored row: (connection_id, stats_id, time) in the stats
// tables, (node_name, time) in sora_node_erlang_vm_memory, connection_id in
// sora_connection.
type rowKey struct {
	table string
	id    string // connection_id, or node_name
	sub   string // stats_id
	time  int64  // microseconds since the epoch, the precision of timestamptz
}

func (k rowKey) String() string {
	return fmt.Sprintf("%s(%s, %s, %s)", k.table, k.id, k.sub, time.UnixMicro(k.time).UTC().Format(time.RFC3339Nano))
}

// keysOf returns the keys of the rows that storing body must give.
func keysOf(exporterType string, body []byte) ([]rowKey, error) {
	rows, err := normalize.Message(exporterType, body)
	if err != nil {
		return nil, err
	}
	var out []rowKey
	if c := rows.Connection; c != nil {
		out = append(out, rowKey{table: normalize.TableConnection, id: c.ConnectionID})
	}
	for table, rs := range rows.Tables {
		cols := normalize.Columns(table)
		at := func(name string) int { return slices.Index(cols, name) }
		id, sub, tm := at("connection_id"), at("stats_id"), at("time")
		if table == normalize.TableErlangVM {
			id = at("node_name")
		}
		for _, r := range rs {
			k := rowKey{table: table, id: r[id].(string), time: r[tm].(time.Time).UnixMicro()}
			if sub >= 0 {
				k.sub = r[sub].(string)
			}
			out = append(out, k)
		}
	}
	return out, nil
}

// storedKeys returns the key of every row of every table the writer fills, with the number
// of rows that have it.
func storedKeys(ctx context.Context, pool *pgxpool.Pool) (map[rowKey]int, error) {
	out := map[rowKey]int{}
	queries := map[string]string{normalize.TableConnection: "SELECT connection_id, '', 'epoch'::timestamptz FROM sora_connection"}
	for _, table := range normalize.StatsTables() {
		id, sub := "connection_id", "stats_id"
		if table == normalize.TableErlangVM {
			id, sub = "node_name", "''"
		}
		queries[table] = fmt.Sprintf("SELECT %s, %s, time FROM %s", id, sub, pgx.Identifier{table}.Sanitize())
	}
	for table, q := range queries {
		rows, err := pool.Query(ctx, q)
		if err != nil {
			return nil, fmt.Errorf("read the keys of %s: %w", table, err)
		}
		k := rowKey{table: table}
		var tm time.Time
		_, err = pgx.ForEachRow(rows, []any{&k.id, &k.sub, &tm}, func() error {
			k.time = tm.UnixMicro()
			if table == normalize.TableConnection {
				k.time = 0
			}
			out[k]++
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("read the keys of %s: %w", table, err)
		}
	}
	return out, nil
}

// verdict compares what the senders were told with what the database holds.
type verdict struct {
	requests   int
	accepted   int // answered 204
	rejected   int // answered 4xx, or abandoned by the client in the middle of the body
	unanswered int // answered 503 or not at all

	expected    int // distinct rows of the requests answered 204
	found       int // rows in the database
	duplicates  int // rows whose key another row has too
	lost        int // expected rows not in the database
	unexpected  int // rows in the database of no request answered 204, 503 or nothing
	extra       int // rows of requests answered 503 or nothing, stored all the same: allowed
	deadLetters int // messages the writer could not store

	examples []string // a few lost and unexpected rows, to show what went wrong
}

// judge reads the database and compares it with the exchanges.
func judge(t *testing.T, pool *pgxpool.Pool, exchanges []exchange) verdict {
	t.Helper()
	var v verdict
	expected, allowed := map[rowKey]bool{}, map[rowKey]bool{}
	for _, e := range exchanges {
		v.requests++
		var into map[rowKey]bool
		switch {
		case e.aborted || e.status >= 400 && e.status < 500:
			v.rejected++ // must not be stored: its rows are not allowed
			continue
		case e.status == http.StatusNoContent:
			v.accepted++
			into = expected
		default:
			v.unanswered++
			into = allowed
		}
		keys, err := keysOf(e.exporterType, e.body)
		if err != nil {
			if into == nil || e.status == http.StatusNoContent {
				t.Errorf("a request answered %d has a body that cannot be stored: %v", e.status, err)
			}
			continue // nothing of it can be in the database
		}
		for _, k := range keys {
			into[k] = true
		}
	}
	v.expected = len(expected)

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	stored, err := storedKeys(ctx, pool)
	if err != nil {
		t.Fatal(err)
	}
	if err := pool.QueryRow(ctx, "SELECT count(*) FROM kohaku_dead_letter").Scan(&v.deadLetters); err != nil {
		t.Fatalf("count dead letters: %v", err)
	}
	for k, n := range stored {
		v.found += n
		v.duplicates += n - 1
		switch {
		case expected[k]:
		case allowed[k]:
			v.extra++
		default:
			v.unexpected++
			if len(v.examples) < 5 {
				v.examples = append(v.examples, "unexpected "+k.String())
			}
		}
	}
	for k := range expected {
		if stored[k] == 0 {
			v.lost++
			if len(v.examples) < 10 {
				v.examples = append(v.examples, "lost "+k.String())
			}
		}
	}
	return v
}

// summary is the one line each test prints.
func (v verdict) summary() string {
	return fmt.Sprintf("summary: requests=%d 204=%d rows_expected=%d rows_found=%d duplicates=%d lost=%d"+
		" (4xx_or_aborted=%d 503_or_none=%d rows_of_503_stored=%d unexpected=%d dead_letters=%d)",
		v.requests, v.accepted, v.expected, v.found, v.duplicates, v.lost,
		v.rejected, v.unanswered, v.extra, v.unexpected, v.deadLetters)
}

// verify waits until the writer has acknowledged the whole stream, then judges the
// database: it prints the summary and fails the test on any duplicate, lost or unexpected
// row, on a dead letter, and when fewer than minAccepted requests were answered 204 (a
// scenario that stored nothing proves nothing).
func (p *pipeline) verify(exchanges []exchange, minAccepted int) verdict {
	t := p.t
	t.Helper()
	start := time.Now()
	p.drained(90 * time.Second)
	t.Logf("the writer acknowledged the whole stream %s after the load ended", time.Since(start).Round(time.Millisecond))
	v := judge(t, p.pool, exchanges)
	line := v.summary()
	t.Log(line)
	fmt.Printf("%s: %s\n", t.Name(), line) // go test shows t.Log only with -v or on failure
	if v.duplicates > 0 || v.lost > 0 || v.unexpected > 0 || v.deadLetters > 0 {
		t.Errorf("the database breaks the promise: %d duplicates, %d lost, %d unexpected rows, %d dead letters; e.g. %q",
			v.duplicates, v.lost, v.unexpected, v.deadLetters, v.examples)
	}
	if v.accepted < minAccepted {
		t.Errorf("only %d requests answered 204, want at least %d", v.accepted, minAccepted)
	}
	return v
}
