package store_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"runtime"
	"syscall"
	"testing"
	"time"

	"kohaku/pkg/sora"
	"kohaku/writer/internal/store"
	"kohaku/writer/internal/writertest"
)

// BenchmarkWrite writes batches of distinct reports, and batches of reports that conflict
// with reports stored before (each sent again under a microsecond later with other
// content, in a later batch): the second costs a merge and a dead letter per element, and
// issue 13 bounds it to twice the first per body.
func BenchmarkWrite(b *testing.B) {
	const batch = 50
	for _, bc := range []struct {
		name     string
		conflict bool // a later batch holds each report again with other content
		repeated bool // the same batch does
	}{{"distinct", false, false}, {"conflicting", true, false}, {"repeated", false, true}} {
		b.Run(bc.name, func(b *testing.B) {
			f := newFixture(b, 0)
			// As the writer logs in production: JSON, to a file.
			f.st = store.New(f.pool, slog.New(slog.NewJSONHandler(io.Discard, nil)), nil)
			var msgs []writertest.Message
			for _, m := range writertest.Messages(b, 2*batch*b.N) {
				if sora.ConnectionType(m.ExporterType) && len(msgs) < batch*b.N {
					msgs = append(msgs, m)
				}
			}
			if bc.repeated { // each report, then its conflicting copy, as a report sent twice
				var pairs []writertest.Message
				for _, m := range msgs[:len(msgs)/2] {
					c := m
					c.Body = conflicting(b, m.Body)
					pairs = append(pairs, m, c)
				}
				msgs = pairs
			}
			items := messages(b, msgs)
			if bc.repeated {
				for i := range items {
					items[i].Seq = uint64(i + 1)
				}
			}
			if bc.conflict {
				for i := 0; i < len(items); i += batch {
					f.write(b, items[i:min(i+batch, len(items))])
				}
				for i, m := range msgs {
					m.Body = conflicting(b, m.Body)
					msgs[i] = m
				}
				items = messages(b, msgs)
				for i := range items {
					items[i].Seq += uint64(len(items)) // other messages than the first copies
				}
			}
			runtime.GC() // the garbage of making the reports is not the writes' CPU
			b.ResetTimer()
			cpu := cpuTime(b)
			for i := 0; i < len(items); i += batch {
				res, err := f.st.Write(context.Background(), items[i:min(i+batch, len(items))])
				if err != nil {
					b.Fatal(err)
				}
				if (bc.conflict || bc.repeated) && res.Conflicts == 0 {
					b.Fatal("no conflict")
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(len(items)), "ns/report")
			b.ReportMetric(float64((cpuTime(b)-cpu).Nanoseconds())/float64(len(items)), "cpu-ns/report")
		})
	}
}

// cpuTime is the CPU time this process has spent, user and system: the writer's cost
// without the database's.
func cpuTime(t testing.TB) time.Duration {
	var u syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &u); err != nil {
		t.Fatal(err)
	}
	return time.Duration(u.Utime.Nano() + u.Stime.Nano())
}

// conflicting returns body 100ns later, in the same microsecond, with a member added to
// every stats element.
func conflicting(t testing.TB, body []byte) []byte {
	t.Helper()
	var env map[string]json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if err := dec.Decode(&env); err != nil {
		t.Fatal(err)
	}
	var ts string
	if err := json.Unmarshal(env["timestamp"], &ts); err != nil {
		t.Fatal(err)
	}
	at, err := time.Parse(time.RFC3339Nano, ts)
	if err != nil {
		t.Fatal(err)
	}
	env["timestamp"], _ = json.Marshal(at.Add(100 * time.Nanosecond).Format("2006-01-02T15:04:05.000000000Z07:00"))
	var stats []map[string]json.RawMessage
	if err := json.Unmarshal(env["stats"], &stats); err != nil {
		t.Fatal(err)
	}
	for _, e := range stats {
		e["appRevision"] = json.RawMessage(`"2"`)
	}
	env["stats"], _ = json.Marshal(stats)
	out, err := json.Marshal(env)
	if err != nil {
		t.Fatal(err)
	}
	return out
}
