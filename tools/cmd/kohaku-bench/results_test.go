package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestEvaluateChecksEveryTarget(t *testing.T) {
	r := &results{
		Phases: []string{phaseReceiver, phaseWriter, phaseEndToEnd},
		Receiver: []receiverCase{
			{Body: "chromium", Feed: exporterFeed.Name, Level: level{8, 32}, Ratio: 0.95},
			{Body: "multistream", Feed: webhookFeed.Name, Level: level{256, 1}, Ratio: 0.85},
		},
		Duplicates: receiverCase{Body: "chromium repeated", Feed: exporterFeed.Name, Level: level{8, 32}, Ratio: 0.5}, // no target
		Writer: writerResult{
			Runs: []writerRun{{Connections: 2, Ratio: 0.85, WriterRowsPerSec: 120, CPUBoundRatio: 0.88,
				WriterBackendSeconds: schedTimes{16 * time.Second, 2100 * time.Millisecond}, CopyBackendSeconds: schedTimes{27 * time.Second, 2 * time.Second}},
				{Connections: 1, Ratio: 0.92, WriterRowsPerSec: 100, CPUBoundRatio: 0.85, ByConnectionCopyRowsPerSec: 125, ByConnectionRatio: 0.8}},
			AnalyzeRatio: 1.5,
		},
		EndToEnd: []endToEnd{{Body: "chromium", P99ms: 1200}, {Body: "multistream", P99ms: 900}},
		Memory: []memory{
			{Process: "kohaku-receiver", Phase: "receiver 8x32", PeakMiB: 40},
			{Process: "kohaku-receiver", Phase: "end to end", PeakMiB: 160},
			{Process: "kohaku-writer", Phase: "writer drain, 1 connection", PeakMiB: 299},
			{Process: "kohaku-writer", Phase: "end to end", PeakMiB: 900}, // no target
		},
	}
	r.evaluate()
	want := map[string]bool{
		"receiver chromium exporter h2c 8x32 req/s / publish-and-ack":         true,
		"receiver multistream webhook HTTP/1.1 256x1 req/s / publish-and-ack": false,
		"writer rows/s / raw CopyFrom, 1 connection":                          true,
		"writer rows/s / raw CopyFrom, 2 connections":                         false,
		"analysis reports/s / writer messages/s":                              true,
		"end to end p99 at half load, chromium, ms":                           false,
		"end to end p99 at half load, multistream, ms":                        true,
		"receiver peak RSS, MiB":                                              false,
		"writer peak RSS while draining, MiB":                                 true,
	}
	if len(r.Targets) != len(want) {
		t.Fatalf("got %d targets, want %d: %+v", len(r.Targets), len(want), r.Targets)
	}
	for _, tg := range r.Targets {
		if m, ok := want[tg.Name]; !ok || m != tg.Met {
			t.Errorf("%s: met %t, want %t (known: %t)", tg.Name, tg.Met, m, ok)
		}
	}
	var out bytes.Buffer
	r.table(&out)
	if !strings.Contains(out.String(), "5 of 9 targets met") {
		t.Errorf("table does not sum up:\n%s", out.String())
	}
	// Only the target that was missed and that the CPU bound rules out says so.
	if n := strings.Count(out.String(), "target above the CPU bound"); n != 1 {
		t.Errorf("%d rows say the CPU bound rules the target out, want 1 (2 connections):\n%s", n, out.String())
	}
	// The backends' times, CopyFrom's a round's: only where both were read.
	if n := strings.Count(out.String(), "16.00 / 2.10"); n != 1 || !strings.Contains(out.String(), "13.50 / 1.00 CopyFrom") {
		t.Errorf("the writer's backend times shown %d times, want once beside CopyFrom's per round:\n%s", n, out.String())
	}
	// CopyFrom in the writer's order: a line of its own, without a target, where it ran.
	if n := strings.Count(out.String(), "against CopyFrom in the writer's row order"); n != 1 || !strings.Contains(out.String(), "125 CopyFrom") {
		t.Errorf("CopyFrom in the writer's order shown %d times, want once, for 1 connection:\n%s", n, out.String())
	}
	path := filepath.Join(t.TempDir(), "r.json")
	if err := r.write(path); err != nil {
		t.Fatal(err)
	}
}

func TestTrackerFollowsEachRequest(t *testing.T) {
	start := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	tr := newTracker(start, 1500*time.Nanosecond, 4)
	// Due times 1.5 µs apart stay distinct at microsecond resolution.
	if len(tr.index) != 4 {
		t.Fatalf("due times collide: %v", tr.due)
	}
	for i := range 4 {
		tr.sent(i)
	}
	tr.answered(0, answer{status: http.StatusNoContent, took: time.Millisecond})
	tr.answered(1, answer{status: http.StatusServiceUnavailable})
	tr.answered(2, answer{status: http.StatusNoContent})
	tr.answered(3, answer{status: http.StatusNoContent})
	tr.seen[0] = tr.due[0].Add(100 * time.Millisecond)
	lo, hi, open := tr.window()
	if !open || !lo.Equal(tr.due[2]) || !hi.Equal(tr.due[3]) {
		t.Errorf("window %s..%s open %t, want the due times of requests 2 and 3", lo, hi, open)
	}
	tr.seen[2] = tr.due[2].Add(300 * time.Millisecond)
	tr.seen[3] = tr.due[3].Add(200 * time.Millisecond)
	if !tr.allSeen() {
		t.Error("allSeen false with every answered row seen")
	}
	var e endToEnd
	tr.summarize(&e)
	if e.Sent != 4 || e.Answered != 3 || e.Failed != 1 || e.Committed != 3 || e.Missing != 0 || e.P50ms != 200 || e.MaxMs != 300 {
		b, _ := json.Marshal(e)
		t.Errorf("got %s", b)
	}
}

func TestWriterMetricsTellTheUpsertFromCopy(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, `# HELP kohaku_writer_copy_seconds Time to COPY
kohaku_writer_copy_seconds_sum{table="rtc_codec_stats"} 1.5
kohaku_writer_copy_seconds_sum{table="rtc_inbound_rtp_stats"} 2.25
kohaku_writer_copy_seconds_sum{table="sora_connection"} 0.5
kohaku_writer_copy_seconds_count{table="sora_connection"} 10
kohaku_writer_flush_seconds_sum 5
kohaku_writer_flush_seconds_count 10
`)
	}))
	defer srv.Close()
	got := writerMetrics(strings.TrimPrefix(srv.URL, "http://"))
	want := flushStats{flushSum: 5, copySum: 3.75, upsertSum: 0.5, flushCount: 10}
	if got != want {
		t.Errorf("writerMetrics = %+v, want %+v", got, want)
	}
}
