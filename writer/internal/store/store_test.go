package store_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"kohaku/pkg/normalize"
	"kohaku/pkg/stream"
	"kohaku/testsupport/dbtest"
	"kohaku/writer/internal/store"
	"kohaku/writer/internal/writertest"
)

func TestTransient(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{"connection failure", &pgconn.PgError{Code: "08006"}, true},
		{"administrator shut the connection", &pgconn.PgError{Code: "57P01"}, true},
		{"server starting", &pgconn.PgError{Code: "57P03"}, true},
		{"too many connections", &pgconn.PgError{Code: "53300"}, true},
		{"disk full", &pgconn.PgError{Code: "53100"}, true},
		{"deadlock", fmt.Errorf("copy: %w", &pgconn.PgError{Code: "40P01"}), true},
		{"serialization failure", &pgconn.PgError{Code: "40001"}, true},
		{"io error", &pgconn.PgError{Code: "58030"}, true},
		{"unique violation", &pgconn.PgError{Code: "23505"}, false},
		{"NUL in text", &pgconn.PgError{Code: "22021"}, false},
		{"missing table", &pgconn.PgError{Code: "42P01"}, false},
		{"statement canceled", &pgconn.PgError{Code: "57014"}, false},
		{"connection closed", fmt.Errorf("copy: %w", io.ErrUnexpectedEOF), true},
		{"refused", &net.OpError{Op: "dial", Err: syscall.ECONNREFUSED}, true},
		{"reset", fmt.Errorf("read: %w", syscall.ECONNRESET), true},
		{"conn closed", fmt.Errorf("begin: %w", pgconn.ErrConnClosed), true},
		{"attempt timed out", context.DeadlineExceeded, true},
		{"shutting down", context.Canceled, false},
		{"something else", errors.New("pgx: cannot encode"), false},
		{"no error", nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := store.Transient(tt.err); got != tt.want {
				t.Errorf("Transient(%v) = %v, want %v", tt.err, got, tt.want)
			}
		})
	}
}

// messages normalizes msgs into store messages with stream sequences from 1; a body that
// normalize rejects carries its error.
func messages(t testing.TB, msgs []writertest.Message) []store.Message {
	t.Helper()
	out := make([]store.Message, len(msgs))
	for i, m := range msgs {
		rows, err := normalize.Message(m.ExporterType, m.Body)
		out[i] = store.Message{Seq: uint64(i + 1), Subject: stream.Subject(m.ExporterType), ExporterType: m.ExporterType,
			Header: map[string][]string{stream.HeaderExporterType: {m.ExporterType}}, Body: m.Body, Rows: rows, Err: err}
	}
	return out
}

type fixture struct {
	url   string
	pool  *pgxpool.Pool
	st    *store.Store
	reg   *prometheus.Registry
	msgs  []writertest.Message
	items []store.Message
}

func newFixture(t testing.TB, n int) *fixture {
	t.Helper()
	f := &fixture{url: writertest.Database(t), reg: prometheus.NewRegistry()}
	f.pool = writertest.Pool(t, f.url)
	f.st = store.New(f.pool, writertest.Logger(t), f.reg)
	f.msgs = writertest.Messages(t, n)
	f.items = messages(t, f.msgs)
	return f
}

func (f *fixture) write(t testing.TB, items []store.Message) store.Result {
	t.Helper()
	res, err := f.st.Write(context.Background(), items)
	if err != nil {
		t.Fatalf("Write: %v", err)
	}
	return res
}

func (f *fixture) counts(t *testing.T) writertest.Counts {
	t.Helper()
	got, err := writertest.Count(context.Background(), f.pool)
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func inserted(res store.Result) int {
	n := 0
	for _, v := range res.Inserted {
		n += v
	}
	return n
}

func TestWriteStoresEachRowOnce(t *testing.T) {
	f := newFixture(t, 20)
	want := writertest.Expect(t, f.msgs)
	want["kohaku_dead_letter"] = 0

	first := f.write(t, f.items)
	if first.Merged || len(first.Dead) != 0 || first.Duplicates != 0 {
		t.Errorf("first write: %+v; want a plain COPY", first)
	}
	if d := want.Diff(f.counts(t)); d != "" {
		t.Fatalf("after the first write: %s", d)
	}
	// A Store remembers the reports it stored, and merges those at once; another Store
	// (a restarted writer) finds them by the COPY's unique violation and merges the batch.
	tests := []struct {
		name       string
		items      []store.Message
		forgotten  bool // written by a Store that did not write the first batch
		wantRedone bool
	}{
		{"the same batch again", f.items, false, false},
		{"half of it again", f.items[5:15], false, false},
		{"one message twice in a batch", []store.Message{f.items[3], f.items[3]}, false, false},
		{"the same batch again, by another writer", f.items, true, true},
		{"old and new in one batch", append(slices.Clone(f.items[:2]), messages(t, writertest.Messages(t, 22)[20:])...), false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := f.counts(t)
			st := f.st
			if tt.forgotten {
				st = store.New(f.pool, writertest.Logger(t), nil)
			}
			res, err := st.Write(context.Background(), tt.items)
			if err != nil {
				t.Fatalf("Write: %v", err)
			}
			if !res.Merged {
				t.Error("not merged: the rows were not there")
			}
			if res.Redone != tt.wantRedone {
				t.Errorf("Redone = %v, want %v", res.Redone, tt.wantRedone)
			}
			after := f.counts(t)
			if got, want := after.Total()-before.Total(), inserted(res); got != want {
				t.Errorf("tables grew by %d rows, Write says it inserted %d", got, want)
			}
		})
	}
	// The last case brought two new messages; nothing else may have changed.
	want = writertest.Expect(t, writertest.Messages(t, 22))
	if d := want.Diff(f.counts(t)); d != "" {
		t.Errorf("at the end: %s", d)
	}
}

func TestWriteIsolatesDataTheDatabaseRejects(t *testing.T) {
	f := newFixture(t, 12)
	bad := []int{3, 7}
	for _, i := range bad {
		// A NUL byte in text: PostgreSQL refuses it (SQLSTATE 22021), whatever the batch.
		corrupt(t, f.items[i].Rows)
	}
	undecodable := 10
	f.items[undecodable].Rows, f.items[undecodable].Err = nil, errors.New("normalize: not JSON")

	res := f.write(t, f.items)
	wantDead := []int{3, 7, 10}
	if !slices.Equal(res.Dead, wantDead) {
		t.Errorf("Dead = %v, want %v", res.Dead, wantDead)
	}
	var good []writertest.Message
	for i, m := range f.msgs {
		if !slices.Contains(wantDead, i) {
			good = append(good, m)
		}
	}
	want := writertest.Expect(t, good)
	want["kohaku_dead_letter"] = len(wantDead)
	if d := want.Diff(f.counts(t)); d != "" {
		t.Errorf("after the write: %s", d)
	}
	rows, err := f.pool.Query(context.Background(), "SELECT stream_seq, error FROM kohaku_dead_letter ORDER BY stream_seq")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for k := 0; rows.Next(); k++ {
		var seq int64
		var reason string
		if err := rows.Scan(&seq, &reason); err != nil {
			t.Fatal(err)
		}
		wantReason := "22021"
		if seq == int64(undecodable+1) {
			wantReason = "not JSON"
		}
		if seq != int64(wantDead[k]+1) || !strings.Contains(reason, wantReason) {
			t.Errorf("dead letter %d: stream_seq %d, error %q; want stream_seq %d, an error with %q", k, seq, reason, wantDead[k]+1, wantReason)
		}
	}
	if got := writertest.Metric(t, f.reg, "kohaku_writer_dead_letters_total"); got != 3 {
		t.Errorf("kohaku_writer_dead_letters_total = %v, want 3", got)
	}

	// Delivered again: the same outcome, and the dead letters are not counted twice.
	again := f.write(t, f.items)
	if !slices.Equal(again.Dead, wantDead) {
		t.Errorf("again: Dead = %v, want %v", again.Dead, wantDead)
	}
	if d := want.Diff(f.counts(t)); d != "" {
		t.Errorf("after writing again: %s", d)
	}
	if got := writertest.Metric(t, f.reg, "kohaku_writer_dead_letters_total"); got != 3 {
		t.Errorf("kohaku_writer_dead_letters_total = %v after writing again, want 3", got)
	}
}

// corrupt puts a NUL byte into the stats_id of one row of rows.
func corrupt(t *testing.T, rows *normalize.Rows) {
	t.Helper()
	for table, rs := range rows.Tables {
		k := slices.Index(normalize.Columns(table), "stats_id")
		if k < 0 || len(rs) == 0 {
			continue
		}
		rs[0][k] = "bad\x00id"
		return
	}
	t.Fatal("no row with a stats_id")
}

func TestConnectionSpansItsMessages(t *testing.T) {
	f := newFixture(t, 0)
	// Messages of the first connection, written out of order over three batches.
	all := messages(t, writertest.Messages(t, 36))
	var conn []store.Message
	for _, m := range all {
		if m.Rows != nil && m.Rows.Connection != nil && m.Rows.Connection.ConnectionID == all[0].Rows.Connection.ConnectionID {
			conn = append(conn, m)
		}
	}
	if len(conn) < 4 {
		t.Fatalf("only %d messages of one connection", len(conn))
	}
	mid, first, last := conn[len(conn)/2], conn[0], conn[len(conn)-1]
	for _, batch := range [][]store.Message{{mid}, {last, mid}, {first}} {
		f.write(t, batch)
	}
	var gotFirst, gotLast time.Time
	err := f.pool.QueryRow(context.Background(), "SELECT first_seen, last_seen FROM sora_connection WHERE connection_id = $1",
		first.Rows.Connection.ConnectionID).Scan(&gotFirst, &gotLast)
	if err != nil {
		t.Fatal(err)
	}
	if !gotFirst.Equal(first.Rows.Connection.Time) || !gotLast.Equal(last.Rows.Connection.Time) {
		t.Errorf("first_seen %s, last_seen %s; want %s, %s", gotFirst, gotLast, first.Rows.Connection.Time, last.Rows.Connection.Time)
	}
}

func TestWriteFailsTransientlyWhileTheDatabaseIsAway(t *testing.T) {
	f := newFixture(t, 3)
	dbtest.BlockDatabase(t, f.url)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := f.st.Write(ctx, f.items)
	if err == nil || !store.Transient(err) {
		t.Fatalf("Write with the database away = %v; want a transient error", err)
	}
	if up := writertest.Metric(t, f.reg, "kohaku_writer_database_up"); up != 0 {
		t.Errorf("kohaku_writer_database_up = %v, want 0", up)
	}
	dbtest.AllowDatabase(t, f.url)
	f.write(t, f.items)
	if d := writertest.Expect(t, f.msgs).Diff(f.counts(t)); d != "" {
		t.Errorf("after the outage: %s", d)
	}
}

// A prepared batch is written again after a write that failed mid-transaction, as the
// writer's retries do: the rows that the failed transaction had copied are gone with it,
// and the second write stores every row, connection and dead letter once.
func TestWriteBatchAgainAfterAFailedTransaction(t *testing.T) {
	f := newFixture(t, 40)
	ctx := context.Background()
	b := f.st.Prepare(f.items)
	// Tables are copied in name order: the batch fails after copying the others.
	const last = "rtc_transport_stats"
	if _, err := f.pool.Exec(ctx, "ALTER TABLE "+last+" RENAME TO kohaku_test_away"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.st.WriteBatch(ctx, b); err == nil {
		t.Fatalf("WriteBatch without %s succeeded", last)
	}
	if _, err := f.pool.Exec(ctx, "ALTER TABLE kohaku_test_away RENAME TO "+last); err != nil {
		t.Fatal(err)
	}
	if got := f.counts(t); got.Total() != 0 {
		t.Fatalf("after the failed write: %d rows, want none", got.Total())
	}
	res, err := f.st.WriteBatch(ctx, b)
	if err != nil {
		t.Fatalf("WriteBatch again: %v", err)
	}
	if d := writertest.Expect(t, f.msgs).Diff(f.counts(t)); d != "" {
		t.Errorf("after the second write: %s", d)
	}
	if res.Duplicates != 0 || res.Merged {
		t.Errorf("second write: %d duplicates, merged %t; want a plain copy", res.Duplicates, res.Merged)
	}
}
