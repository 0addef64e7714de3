package store_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"kohaku/pkg/normalize"
	"kohaku/pkg/sora"
	"kohaku/pkg/stream"
	"kohaku/writer/internal/store"
	"kohaku/writer/internal/writertest"
)

// report returns a connection.user-agent body of connection conn (26 characters) at time
// ts (RFC 3339) whose stats array is stats.
func report(conn, ts, stats string) []byte {
	return []byte(`{"type":"connection.user-agent","id":"01JD3K9Q2W8E5R7T1Y4U6I0OPB","timestamp":"` + ts + `",` +
		`"label":"WebRTC SFU Sora","version":"2025.1.0","node_name":"sora@127.0.0.1","multistream":false,` +
		`"simulcast":false,"spotlight":false,"role":"sendrecv","channel_id":"isolate","client_id":"c",` +
		`"session_id":"01JD3K9Q2W8E5R7T1Y4U6I0S77","connection_id":"` + conn + `","stats":` + stats + `}`)
}

// message normalizes body into a store message of stream sequence seq.
func message(t *testing.T, seq uint64, body []byte) store.Message {
	t.Helper()
	rows, err := normalize.Message(sora.TypeUserAgent, body)
	if err != nil {
		t.Fatalf("normalize: %v", err)
	}
	return store.Message{Seq: seq, Subject: stream.Subject(sora.TypeUserAgent), ExporterType: sora.TypeUserAgent,
		Header: map[string][]string{stream.HeaderExporterType: {sora.TypeUserAgent}}, Body: body, Rows: rows}
}

// deadLetter is a row of kohaku_dead_letter.
type deadLetter struct {
	seq          int64
	element      *int32
	reason, conn string
	body, err    string
	msgID        string // the Nats-Msg-Id of its headers
}

func (f *fixture) deadLetters(t *testing.T) []deadLetter {
	t.Helper()
	rows, err := f.pool.Query(context.Background(),
		"SELECT stream_seq, element, reason, coalesce(connection_id, ''), convert_from(body, 'UTF8'), error, "+
			"coalesce(headers->$1->>0, '') FROM kohaku_dead_letter ORDER BY stream_seq, element", stream.HeaderMsgID)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []deadLetter
	for rows.Next() {
		var d deadLetter
		if err := rows.Scan(&d.seq, &d.element, &d.reason, &d.conn, &d.body, &d.err, &d.msgID); err != nil {
			t.Fatal(err)
		}
		out = append(out, d)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// expect returns the counts that storing msgs gives: their rows, one sora_connection row
// per connection, a dead letter per element set apart and per message without rows.
func expect(msgs ...store.Message) writertest.Counts {
	want := writertest.Counts{}
	for _, table := range writertest.Tables() {
		want[table] = 0
	}
	conns, seen := map[string]bool{}, map[uint64]bool{}
	for _, m := range msgs {
		if seen[m.Seq] {
			continue
		}
		seen[m.Seq] = true
		if m.Rows == nil {
			want["kohaku_dead_letter"]++
			continue
		}
		for table, rs := range m.Rows.Tables {
			want[table] += len(rs)
		}
		want["kohaku_dead_letter"] += len(m.Rows.Rejected)
		if c := m.Rows.Connection; c != nil {
			conns[c.ConnectionID] = true
		}
	}
	want[normalize.TableConnection] = len(conns)
	return want
}

// metricWith returns the value of the counter name's series whose label is value.
func metricWith(t *testing.T, g prometheus.Gatherer, name, label, value string) float64 {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == label && l.GetValue() == value {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}

// TestWriteStoresAReportWithoutItsBadElement writes, for each kind of element that
// PostgreSQL cannot store, a report with one such element among good ones: the good ones
// are stored, the bad one is in kohaku_dead_letter with its reason, once, also after the
// batch is written again (a redelivery) and after its messages are written again in other
// batches among other messages (a replay).
func TestWriteStoresAReportWithoutItsBadElement(t *testing.T) {
	good := []string{
		`{"id":"C1","type":"codec","timestamp":1,"mimeType":"audio/opus"}`,
		`{"id":"D1","type":"data-channel","timestamp":1,"label":"chat","state":"open"}`,
		`{"id":"T1","type":"transport","timestamp":1,"bytesSent":5,"googX":"y"}`,
	}
	tests := []struct {
		name, bad, reason string
	}{
		{"NUL in a data-channel label", `{"id":"D2","type":"data-channel","timestamp":1,"label":"chat\u0000","state":"open"}`, normalize.RejectNUL},
		{"NUL in an unknown member", `{"id":"T2","type":"transport","timestamp":1,"appData":"a\u0000b"}`, normalize.RejectNUL},
		{"NUL in an id", `{"id":"IT\u0000","type":"inbound-rtp","timestamp":1,"ssrc":1,"kind":"audio"}`, normalize.RejectNUL},
		{"a number beyond numeric", `{"id":"T2","type":"transport","timestamp":1,"x":1e200000}`, normalize.RejectNumber},
		{"zero with an exponent numeric refuses", `{"id":"C2","type":"codec","timestamp":1,"x":0e1073741823}`, normalize.RejectNumber},
		{"a 3000-character id", `{"id":"` + strings.Repeat("i", 3000) + `","type":"codec","timestamp":1}`, normalize.RejectLongID},
	}
	f := newFixture(t, 0)
	var reports []store.Message
	var want []deadLetter
	for k, tt := range tests {
		conn := fmt.Sprintf("01JD3K9Q2W8E5R7T1Y4U6I%04d", k)
		stats := "[" + good[0] + "," + good[1] + "," + tt.bad + "," + good[2] + "]"
		m := message(t, uint64(100+k), report(conn, "2026-11-29T06:40:00.123456Z", stats))
		if len(m.Rows.Rejected) != 1 || m.Rows.Count != len(good) {
			t.Fatalf("%s: normalize set apart %d elements and made %d rows; want 1 and %d", tt.name, len(m.Rows.Rejected), m.Rows.Count, len(good))
		}
		m.Header = map[string][]string{stream.HeaderExporterType: {sora.TypeUserAgent}, stream.HeaderMsgID: {fmt.Sprint("msg-", k)}}
		reports = append(reports, m)
		element := int32(2)
		want = append(want, deadLetter{seq: int64(100 + k), element: &element, reason: tt.reason, conn: conn, body: tt.bad, msgID: fmt.Sprint("msg-", k)})
	}
	others := messages(t, writertest.Messages(t, 3))
	for k := range others {
		others[k].Seq += 1000
	}
	replayed := slices.Clone(reports)
	slices.Reverse(replayed)

	passes := []struct {
		name    string
		batches [][]store.Message
		fresh   int // element dead letters it adds
		want    writertest.Counts
	}{
		{"first write", [][]store.Message{reports}, len(tests), expect(reports...)},
		{"the batch again (redelivery)", [][]store.Message{reports}, 0, expect(reports...)},
		{"in other batches among other messages (replay)",
			[][]store.Message{{others[0], replayed[0]}, {replayed[1], others[1], replayed[2]}, replayed[3:], others[2:]},
			0, expect(append(slices.Clone(reports), others...)...)},
	}
	for _, pass := range passes {
		t.Run(pass.name, func(t *testing.T) {
			fresh := 0
			for _, b := range pass.batches {
				res := f.write(t, b)
				if len(res.Dead) != 0 {
					t.Errorf("messages dead-lettered whole: %v", res.Dead)
				}
				fresh += res.DeadElements
			}
			if fresh != pass.fresh {
				t.Errorf("Write added %d element dead letters, want %d", fresh, pass.fresh)
			}
			if d := pass.want.Diff(f.counts(t)); d != "" {
				t.Errorf("row counts: %s", d)
			}
			got := f.deadLetters(t)
			if len(got) != len(want) {
				t.Fatalf("%d dead letters, want %d: %+v", len(got), len(want), got)
			}
			for k, d := range got {
				w := want[k]
				if d.seq != w.seq || d.element == nil || *d.element != *w.element || d.reason != w.reason || d.conn != w.conn || d.body != w.body || d.msgID != w.msgID {
					t.Errorf("dead letter %d: stream_seq %d, element %v, reason %s, connection %s, message id %s, body %.80s; want %d, %d, %s, %s, %s, %.80s",
						k, d.seq, d.element, d.reason, d.conn, d.msgID, d.body, w.seq, *w.element, w.reason, w.conn, w.msgID, w.body)
				}
			}
			if got := writertest.Metric(t, f.reg, "kohaku_writer_dead_letters_total"); got != float64(len(tests)) {
				t.Errorf("kohaku_writer_dead_letters_total = %v, want %d", got, len(tests))
			}
			for _, reason := range []string{normalize.RejectNUL, normalize.RejectNumber, normalize.RejectLongID} {
				wantN := 0
				for _, tt := range tests {
					if tt.reason == reason {
						wantN++
					}
				}
				if got := metricWith(t, f.reg, "kohaku_writer_dead_letters_total", "reason", reason); got != float64(wantN) {
					t.Errorf("kohaku_writer_dead_letters_total{reason=%q} = %v, want %d", reason, got, wantN)
				}
			}
		})
	}
}

// The stream sequences, connection, and conflicting element of reportsWithinAMicrosecond.
const (
	seqFirst, seqOther, seqSame = 1, 2, 3
	conn                        = "01JD3K9Q2W8E5R7T1Y4U6I0C77"
	conflictBody                = `{"id":"T1","type":"transport","timestamp":1,"bytesSent":6,"googX":"y","googZ":[1]}`
)

// reportsWithinAMicrosecond returns three reports of one connection whose timestamps differ
// by less than a microsecond: first; other, whose transport element (element 1,
// conflictBody) sent more; and same, whose content is first's, the members of its
// transport's extra in another order.
func reportsWithinAMicrosecond(t *testing.T) (first, other, same store.Message) {
	codec := `{"id":"C1","type":"codec","timestamp":1,"mimeType":"audio/opus"}`
	transport := func(bytesSent int, extra string) string {
		return fmt.Sprintf(`{"id":"T1","type":"transport","timestamp":1,"bytesSent":%d,%s}`, bytesSent, extra)
	}
	first = message(t, seqFirst, report(conn, "2026-11-29T06:40:00.123456100Z", "["+codec+","+transport(5, `"googX":"y","googZ":[1]`)+"]"))
	other = message(t, seqOther, report(conn, "2026-11-29T06:40:00.123456900Z", "["+codec+","+conflictBody+"]"))
	same = message(t, seqSame, report(conn, "2026-11-29T06:40:00.1234565Z", "["+codec+","+transport(5, `"googZ":[1],"googX":"y"`)+"]"))
	return first, other, same
}

// TestWriteRecordsConflicts writes reports of one connection whose timestamps differ by
// less than a microsecond, which PostgreSQL keeps, so that their rows share natural keys:
// a row with different content is a conflict, kept in kohaku_dead_letter and counted once;
// a row with the same content is a duplicate.
func TestWriteRecordsConflicts(t *testing.T) {
	first, other, same := reportsWithinAMicrosecond(t)

	type result struct{ conflicts, duplicates int }
	tests := []struct {
		name    string
		batches [][]store.Message
		want    []result // per batch
		dead    []int64  // stream_seq of the conflicts kept, element 1 each
	}{
		{"a report within the microsecond, in a later batch", [][]store.Message{{first}, {other}},
			[]result{{0, 0}, {1, 1}}, []int64{seqOther}},
		{"both in one batch", [][]store.Message{{first, other}},
			[]result{{1, 1}}, []int64{seqOther}},
		{"the conflicting report delivered again", [][]store.Message{{first}, {other}, {other}, {first, other}},
			[]result{{0, 0}, {1, 1}, {0, 2}, {0, 4}}, []int64{seqOther}},
		{"the same content within the microsecond is a duplicate", [][]store.Message{{first}, {same}, {first, same}},
			[]result{{0, 0}, {0, 2}, {0, 4}}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, 0)
			for k, b := range tt.batches {
				res := f.write(t, b)
				if got := (result{res.Conflicts, res.Duplicates}); got != tt.want[k] {
					t.Errorf("batch %d: %d conflicts, %d duplicates; want %d, %d", k, got.conflicts, got.duplicates, tt.want[k].conflicts, tt.want[k].duplicates)
				}
				if len(res.Dead) != 0 {
					t.Errorf("batch %d: messages dead-lettered whole: %v", k, res.Dead)
				}
			}
			var sent int64
			if err := f.pool.QueryRow(context.Background(), "SELECT bytes_sent FROM rtc_transport_stats").Scan(&sent); err != nil {
				t.Fatal(err)
			}
			if sent != 5 {
				t.Errorf("stored bytes_sent %d, want the first report's 5", sent)
			}
			got := f.deadLetters(t)
			if len(got) != len(tt.dead) {
				t.Fatalf("%d dead letters, want %d: %+v", len(got), len(tt.dead), got)
			}
			for k, d := range got {
				if d.seq != tt.dead[k] || d.element == nil || *d.element != 1 || d.reason != store.ReasonConflict || d.conn != conn || d.body != conflictBody {
					t.Errorf("dead letter: stream_seq %d, element %v, reason %s, connection %s, body %s; want %d, 1, conflict, %s, %s",
						d.seq, d.element, d.reason, d.conn, d.body, tt.dead[k], conn, conflictBody)
				}
			}
			if got := metricWith(t, f.reg, "kohaku_writer_conflicts_total", "table", "rtc_transport_stats"); got != float64(len(tt.dead)) {
				t.Errorf("kohaku_writer_conflicts_total{table=rtc_transport_stats} = %v, want %d", got, len(tt.dead))
			}
			if got := writertest.Metric(t, f.reg, "kohaku_writer_conflicts_total"); got != float64(len(tt.dead)) {
				t.Errorf("kohaku_writer_conflicts_total = %v, want %d", got, len(tt.dead))
			}
			if got := metricWith(t, f.reg, "kohaku_writer_dead_letters_total", "reason", store.ReasonConflict); got != float64(len(tt.dead)) {
				t.Errorf("kohaku_writer_dead_letters_total{reason=conflict} = %v, want %d", got, len(tt.dead))
			}
			wantDup := 0
			for _, r := range tt.want {
				wantDup += r.duplicates
			}
			if got := writertest.Metric(t, f.reg, "kohaku_writer_duplicate_rows_total"); got != float64(wantDup) {
				t.Errorf("kohaku_writer_duplicate_rows_total = %v, want %d", got, wantDup)
			}
		})
	}
}

// TestWriteSettlesRepeatedReportsWithoutTheMerge pins where a report seen twice is
// decided: within a batch in Go, jsonb values compared as the database compares them; in
// a later batch by merging only that report, which the Store remembers; only a Store that
// never saw it (a restarted writer) finds it by a failed COPY and merges its whole batch.
func TestWriteSettlesRepeatedReportsWithoutTheMerge(t *testing.T) {
	first, other, same := reportsWithinAMicrosecond(t)
	extraDiffers := message(t, 4, report(conn, "2026-11-29T06:40:00.1234567Z",
		`[{"id":"C1","type":"codec","timestamp":1,"mimeType":"audio/opus"},{"id":"T1","type":"transport","timestamp":1,"bytesSent":5,"googX":"z","googZ":[1]}]`))
	fresh := message(t, 5, report(conn, "2026-11-29T06:40:01Z", "[]"))
	type want struct {
		merged, redone        bool
		conflicts, duplicates int
	}
	tests := []struct {
		name      string
		batches   [][]store.Message
		forgotten int    // from this batch on, another Store writes (a restarted writer)
		want      []want // per batch
	}{
		{"the same content twice in a batch", [][]store.Message{{first, same}}, -1,
			[]want{{false, false, 0, 2}}},
		{"an unknown member differing in a batch", [][]store.Message{{first, extraDiffers}}, -1,
			[]want{{false, false, 1, 1}}},
		{"a conflict in a later batch", [][]store.Message{{first}, {fresh, other}}, -1,
			[]want{{false, false, 0, 0}, {true, false, 1, 1}}},
		{"a conflict after a restart", [][]store.Message{{first}, {fresh, other}}, 1,
			[]want{{false, false, 0, 0}, {true, true, 1, 1}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, 0)
			st := f.st
			for k, b := range tt.batches {
				if k == tt.forgotten {
					st = store.New(f.pool, writertest.Logger(t), nil)
				}
				res, err := st.Write(context.Background(), b)
				if err != nil {
					t.Fatalf("batch %d: %v", k, err)
				}
				got := want{res.Merged, res.Redone, res.Conflicts, res.Duplicates}
				if got != tt.want[k] {
					t.Errorf("batch %d: %+v, want %+v", k, got, tt.want[k])
				}
			}
		})
	}
}
