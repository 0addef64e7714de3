package importer_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"kohaku/pkg/normalize"
	"kohaku/pkg/sora"
	"kohaku/testsupport/fixtures"
	"kohaku/writer/internal/importer"
	"kohaku/writer/internal/store"
	"kohaku/writer/internal/writertest"
)

// db is a fresh migrated database with a store writing into it.
type db struct {
	pool  *pgxpool.Pool
	store *store.Store
}

func newDB(t *testing.T) db {
	t.Helper()
	pool := writertest.Pool(t, writertest.Database(t))
	return db{pool: pool, store: store.New(pool, writertest.Logger(t), prometheus.NewRegistry())}
}

func (d db) counts(t *testing.T) writertest.Counts {
	t.Helper()
	got, err := writertest.Count(context.Background(), d.pool)
	if err != nil {
		t.Fatal(err)
	}
	return got
}

// webhooks returns the fixture webhook bodies, the reports of the fixture log.
func webhooks(t *testing.T) []writertest.Message {
	t.Helper()
	hooks, err := fixtures.Webhooks()
	if err != nil {
		t.Fatal(err)
	}
	var out []writertest.Message
	for _, h := range hooks {
		out = append(out, writertest.Message{ExporterType: h.ExporterType, Body: h.Body})
	}
	return out
}

func fixtureLog(t *testing.T) []byte {
	t.Helper()
	log, err := fixtures.RTCStatsLog()
	if err != nil {
		t.Fatal(err)
	}
	return log
}

// writeFile writes data to a file name in a temporary directory and returns its path.
func writeFile(t *testing.T, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func gzipped(t *testing.T, data []byte) []byte {
	t.Helper()
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	if _, err := zw.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// syncBuffer collects what the import writes from several goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func run(t *testing.T, w importer.Writer, names []string, o importer.Options) (importer.Stats, string) {
	t.Helper()
	var out syncBuffer
	o.Rejected = &out
	if o.Logger == nil {
		o.Logger = writertest.Logger(t)
	}
	s, err := importer.Import(context.Background(), w, names, o)
	if err != nil {
		t.Fatalf("Import: %v\n%s", err, out.String())
	}
	return s, out.String()
}

func TestImportFixtureOnceAndAgain(t *testing.T) {
	d := newDB(t)
	path := writeFile(t, "rtc_stats.jsonl", fixtureLog(t))
	want := writertest.Expect(t, webhooks(t))
	stats := 0
	for _, table := range normalize.StatsTables() {
		stats += want[table]
	}
	if stats != 208 || want[normalize.TableConnection] != 2 {
		t.Fatalf("the fixture gives %d stats rows and %d connections, want 208 and 2", stats, want[normalize.TableConnection])
	}
	tests := []struct {
		name    string
		newRows int
	}{
		{"into an empty database", 208},
		{"again: nothing doubles", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, out := run(t, d.store, []string{path}, importer.Options{BatchSize: 3})
			if s.Lines != 208 || s.Reports != 8 || s.Rows != 208 || s.NewRows != tt.newRows || s.Rejected != 0 {
				t.Errorf("stats %+v, want 208 lines, 8 reports, 208 rows, %d new, none rejected", s, tt.newRows)
			}
			if out != "" {
				t.Errorf("rejections reported:\n%s", out)
			}
			if d := want.Diff(d.counts(t)); d != "" {
				t.Error(d)
			}
			if s.RowsFrom.IsZero() || s.RowsTo.Before(s.RowsFrom) {
				t.Errorf("row window %s to %s", s.RowsFrom, s.RowsTo)
			}
			wantSummary := fmt.Sprintf("import: 208 lines, 8 reports, 208 rows (%d already present), 0 rejected, ", 208-tt.newRows)
			if !strings.HasPrefix(s.Summary(), wantSummary) || !strings.HasSuffix(s.Summary(), " in all") {
				t.Errorf("summary %q, want it to start with %q", s.Summary(), wantSummary)
			}
		})
	}
}

// TestImportEqualsTheWebhook stores the fixture webhook bodies as the live path does into
// one database and imports the log made of them into another: every table must hold the
// same rows, column for column.
func TestImportEqualsTheWebhook(t *testing.T) {
	live, imported := newDB(t), newDB(t)
	var msgs []store.Message
	for i, m := range webhooks(t) {
		if err := sora.Validate(m.ExporterType, m.Body); err != nil {
			t.Fatalf("webhook %d: %v", i, err)
		}
		rows, err := normalize.Message(m.ExporterType, m.Body)
		if err != nil {
			t.Fatalf("webhook %d: %v", i, err)
		}
		msgs = append(msgs, store.Message{Seq: uint64(i + 1), Subject: "kohaku.stats." + m.ExporterType, ExporterType: m.ExporterType, Body: m.Body, Rows: rows})
	}
	if _, err := live.store.Write(context.Background(), msgs); err != nil {
		t.Fatal(err)
	}
	run(t, imported.store, []string{writeFile(t, "rtc_stats.jsonl", fixtureLog(t))}, importer.Options{})

	for _, table := range writertest.Tables() {
		if table == "kohaku_dead_letter" {
			continue // keyed by stream sequence; compared by count below
		}
		want, got := dump(t, live.pool, table), dump(t, imported.pool, table)
		if !slices.Equal(got, want) {
			t.Errorf("%s: the import stored %d rows, the webhook %d, and they differ:\n got %.400q\nwant %.400q", table, len(got), len(want), got, want)
		}
	}
	counts := live.counts(t)
	if counts.Total() != 208+2 {
		// Else the comparison proves little.
		t.Errorf("the live path stored %v, want the fixture's 208 stats rows and 2 connections", counts)
	}
	if d := counts.Diff(imported.counts(t)); d != "" {
		t.Errorf("counts: %s", d)
	}
}

// dump returns every row of table, all columns as text, in natural key order.
func dump(t *testing.T, pool *pgxpool.Pool, table string) []string {
	t.Helper()
	order := "connection_id, stats_id, time" // the stats tables' natural key
	switch table {
	case normalize.TableConnection:
		order = "connection_id"
	case normalize.TableErlangVM:
		order = "time, node_name"
	}
	id := pgx.Identifier{table}.Sanitize()
	rows, err := pool.Query(context.Background(), fmt.Sprintf("SELECT t::text FROM %s t ORDER BY %s", id, order))
	if err != nil {
		t.Fatalf("dump %s: %v", table, err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatalf("dump %s: %v", table, err)
	}
	return out
}

// badReport returns the fixture log with every line of report 2 (lines 55-81) edited by f.
func badReport(t *testing.T, f func(line []byte) []byte) []byte {
	t.Helper()
	lines := bytes.SplitAfter(fixtureLog(t), []byte("\n"))
	for i := 54; i < 81; i++ {
		lines[i] = f(lines[i])
	}
	return bytes.Join(lines, nil)
}

func TestImportRejectsBadReportsAndKeepsTheRest(t *testing.T) {
	good := webhooks(t)
	withoutReport2 := append(slices.Clone(good[:2]), good[3:]...)
	tests := []struct {
		name     string
		files    map[string][]byte // name -> content; "missing" is not written
		imported []writertest.Message
		rejected int
		want     []string // in the rejections, in order
	}{
		{
			name: "a line that is not JSON",
			files: map[string][]byte{"a.jsonl": func() []byte {
				lines := bytes.SplitAfter(fixtureLog(t), []byte("\n"))
				lines[59] = []byte("{oops\n")
				return bytes.Join(lines, nil)
			}()},
			imported: withoutReport2,
			rejected: 1,
			want:     []string{"a.jsonl:60: not valid JSON", "a.jsonl:55: report 01M9JZ16STSFYWHYSQZ9BM8KAH (lines 55-81): not imported"},
		},
		{
			name: "a report that fails validation",
			files: map[string][]byte{"b.jsonl": badReport(t, func(l []byte) []byte {
				return bytes.Replace(l, []byte(`"session_id":"01M9JZ12W8G6MSEK253874VBSG"`), []byte(`"session_id":"short"`), 1)
			})},
			imported: withoutReport2,
			rejected: 1,
			want:     []string{"b.jsonl:55: report 01M9JZ16STSFYWHYSQZ9BM8KAH (lines 55-81): not imported: sora: session_id: must be exactly 26 characters"},
		},
		{
			name: "a truncated last line",
			files: map[string][]byte{"c.jsonl": func() []byte {
				log := fixtureLog(t)
				return log[:len(log)-100]
			}()},
			imported: good[:7],
			rejected: 1,
			want:     []string{"c.jsonl:208: last line, without a newline: truncated", "c.jsonl:184: report 01M9JZ18RNG6NBYNPP8VZY08CM (lines 184-208): not imported"},
		},
		{
			name:     "a file that cannot be opened, and one that can",
			files:    map[string][]byte{"missing": nil, "d.jsonl": fixtureLog(t)},
			imported: good,
			rejected: 1,
			want:     []string{"missing: no such file"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := newDB(t)
			dir := t.TempDir()
			var names []string
			for _, name := range slices.Sorted(maps.Keys(tt.files)) {
				p := filepath.Join(dir, name)
				if tt.files[name] != nil {
					if err := os.WriteFile(p, tt.files[name], 0o644); err != nil {
						t.Fatal(err)
					}
				}
				names = append(names, p)
			}
			s, out := run(t, d.store, names, importer.Options{})
			if s.Rejected != tt.rejected {
				t.Errorf("%d rejected, want %d\n%s", s.Rejected, tt.rejected, out)
			}
			rest := out
			for _, w := range tt.want {
				i := strings.Index(rest, w)
				if i < 0 {
					t.Errorf("the rejections do not say %q (in this order):\n%s", w, out)
					break
				}
				rest = rest[i+len(w):]
			}
			if d := writertest.Expect(t, tt.imported).Diff(d.counts(t)); d != "" {
				t.Errorf("imported: %s", d)
			}
		})
	}
}

func TestImportReadsGzipAndStdin(t *testing.T) {
	log := fixtureLog(t)
	tests := []struct {
		name  string
		file  []byte // written to a file named name, or nil
		stdin []byte
	}{
		{name: "rtc_stats.jsonl.gz", file: gzipped(t, log)},
		{name: "rtc_stats.jsonl.1", file: gzipped(t, log)}, // rotated, compressed without .gz
		{name: "-", stdin: log},
		{name: "-", stdin: gzipped(t, log)},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s %d bytes", tt.name, len(tt.file)+len(tt.stdin)), func(t *testing.T) {
			d := newDB(t)
			name := tt.name
			if tt.file != nil {
				name = writeFile(t, tt.name, tt.file)
			}
			s, out := run(t, d.store, []string{name}, importer.Options{Stdin: bytes.NewReader(tt.stdin)})
			if s.Reports != 8 || s.Rows != 208 || s.Rejected != 0 {
				t.Errorf("stats %+v, want 8 reports, 208 rows, none rejected\n%s", s, out)
			}
			if d := writertest.Expect(t, webhooks(t)).Diff(d.counts(t)); d != "" {
				t.Error(d)
			}
		})
	}
}

// corrupting is a Writer that makes the database refuse the report with id, as it refuses
// data it cannot store, by putting a NUL byte into one of its rows.
type corrupting struct {
	importer.Writer
	id string
}

func (c corrupting) Write(ctx context.Context, msgs []store.Message) (store.Result, error) {
	for i, m := range msgs {
		if !bytes.Contains(m.Body, []byte(`"id":"`+c.id+`"`)) {
			continue
		}
		for table, rows := range m.Rows.Tables {
			if k := slices.Index(normalize.Columns(table), "stats_id"); k >= 0 && len(rows) > 0 {
				rows[0][k] = "bad\x00id"
				break
			}
		}
		msgs[i] = m
	}
	return c.Writer.Write(ctx, msgs)
}

func TestImportReportsWhatTheDatabaseRefuses(t *testing.T) {
	d := newDB(t)
	path := writeFile(t, "rtc_stats.jsonl", fixtureLog(t))
	good := webhooks(t)
	want := writertest.Expect(t, append(slices.Clone(good[:4]), good[5:]...))
	want["kohaku_dead_letter"] = 1
	for round := range 2 { // the second finds the dead letter kept already
		s, out := run(t, corrupting{Writer: d.store, id: "01M9JZ12WC3CATZ4PGFFK7YJDJ"}, []string{path}, importer.Options{})
		if s.Rejected != 1 || !strings.Contains(out, "rtc_stats.jsonl:109: report 01M9JZ12WC3CATZ4PGFFK7YJDJ (lines 109-133): not imported: the database refused it") {
			t.Errorf("round %d: %d rejected, want 1 naming line 109:\n%s", round, s.Rejected, out)
		}
		if diff := want.Diff(d.counts(t)); diff != "" {
			t.Errorf("round %d: %s", round, diff)
		}
	}
	var (
		seq     int64
		headers map[string][]string
	)
	err := d.pool.QueryRow(context.Background(), "SELECT stream_seq, headers FROM kohaku_dead_letter").Scan(&seq, &headers)
	if err != nil {
		t.Fatal(err)
	}
	if seq >= 0 || !slices.Equal(headers[importer.HeaderImportSource], []string{path + ":109"}) {
		t.Errorf("dead letter stream_seq %d, headers %v; want a negative key and %s %s:109", seq, headers, importer.HeaderImportSource, path)
	}
}

// flaky fails its first writes as a database that is away does, then writes.
type flaky struct {
	importer.Writer
	mu    sync.Mutex
	fails int
	err   error
	calls int
}

func (f *flaky) Write(ctx context.Context, msgs []store.Message) (store.Result, error) {
	f.mu.Lock()
	f.calls++
	fail := f.calls <= f.fails
	f.mu.Unlock()
	if fail {
		return store.Result{}, f.err
	}
	return f.Writer.Write(ctx, msgs)
}

func TestImportRetriesTransientFailures(t *testing.T) {
	path := writeFile(t, "rtc_stats.jsonl", fixtureLog(t))
	tests := []struct {
		name    string
		err     error
		wantErr bool
	}{
		{"the database is away for a while", &pgconn.PgError{Code: "57P03", Message: "the database system is starting up"}, false},
		{"a failure that needs an operator ends the import", &pgconn.PgError{Code: "42P01", Message: `relation "rtc_codec_stats" does not exist`}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := newDB(t)
			f := &flaky{Writer: d.store, fails: 3, err: tt.err}
			s, err := importer.Import(context.Background(), f, []string{path}, importer.Options{
				RetryMin: time.Millisecond, RetryMax: 5 * time.Millisecond, Logger: writertest.Logger(t)})
			if tt.wantErr {
				if err == nil || !errors.Is(err, tt.err) {
					t.Errorf("Import = %v, want the write's error", err)
				}
				if !s.Unfinished || !strings.HasSuffix(s.Summary(), " in all, not finished") {
					t.Errorf("summary %q of an import that stopped, want it to say \"not finished\"", s.Summary())
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if s.Unfinished || strings.Contains(s.Summary(), "not finished") {
				t.Errorf("summary %q of an import that finished", s.Summary())
			}
			if f.calls != 4 || s.Rows != 208 {
				t.Errorf("%d writes and %d rows, want 4 and 208", f.calls, s.Rows)
			}
			if diff := writertest.Expect(t, webhooks(t)).Diff(d.counts(t)); diff != "" {
				t.Error(diff)
			}
		})
	}
}

// slow is a Writer that takes its time, so that progress lines come.
type slow struct{ importer.Writer }

func (s slow) Write(ctx context.Context, msgs []store.Message) (store.Result, error) {
	time.Sleep(20 * time.Millisecond)
	return s.Writer.Write(ctx, msgs)
}

func TestImportPrintsProgress(t *testing.T) {
	d := newDB(t)
	var progress syncBuffer
	path := writeFile(t, "rtc_stats.jsonl", fixtureLog(t))
	run(t, slow{d.store}, []string{path}, importer.Options{BatchSize: 1, Progress: &progress, ProgressEvery: 10 * time.Millisecond})
	lines := strings.Split(strings.TrimSpace(progress.String()), "\n")
	if len(lines) < 2 {
		t.Fatalf("%d progress lines in 8 writes of 20ms every 10ms:\n%s", len(lines), progress.String())
	}
	for _, l := range lines {
		if !strings.HasPrefix(l, "import: ") || !strings.Contains(l, " lines, ") || !strings.Contains(l, " lines/s") {
			t.Errorf("progress line %q", l)
		}
	}
	if !strings.Contains(progress.String(), "left") {
		t.Errorf("no time left estimated for a file:\n%s", progress.String())
	}
}
