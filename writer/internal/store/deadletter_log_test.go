package store

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"testing"
)

// The dead letters of one message make one log line per kind, whatever their order: a
// merge finds conflicts table by table, so that a report in conflict in every element
// once logged a line per table.
func TestDeadLettersLogOneLinePerMessageAndKind(t *testing.T) {
	msgs := []Message{{Seq: 7, Subject: "a"}, {Seq: 8, Subject: "b"}}
	conflict := func(msg, element int, table string) deadLetter {
		return deadLetter{msg: msg, element: element, reason: ReasonConflict, table: table}
	}
	added := []deadLetter{ // as a merge of two tables gives them
		conflict(0, 3, "rtc_codec_stats"), conflict(1, 1, "rtc_codec_stats"), conflict(0, 5, "rtc_transport_stats"),
		{msg: 0, element: 9, reason: "nul"}, conflict(1, 4, "rtc_transport_stats"), conflict(0, 1, "rtc_transport_stats"),
		{msg: 1, element: -1, reason: ReasonDecode},
	}
	var buf bytes.Buffer
	s := &Store{log: slog.New(slog.NewJSONHandler(&buf, nil))}
	s.logDeadLetters(msgs, added)

	type line struct {
		Seq      uint64 `json:"stream_seq"`
		Elements int    `json:"elements"`
		Reason   string `json:"reason"`
	}
	var got []line
	for _, l := range bytes.Split(bytes.TrimSpace(buf.Bytes()), []byte("\n")) {
		var x line
		if err := json.Unmarshal(l, &x); err != nil {
			t.Fatalf("log line %s: %v", l, err)
		}
		got = append(got, x)
	}
	want := []line{{7, 1, "nul"}, {7, 3, ReasonConflict}, {8, 0, ""}, {8, 2, ReasonConflict}}
	if len(got) != len(want) {
		t.Fatalf("%d log lines, want %d:\n%s", len(got), len(want), buf.String())
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("line %d: %+v, want %+v", i, got[i], want[i])
		}
	}
	if added[0].msg != 0 || added[1].msg != 1 {
		t.Error("logDeadLetters reordered the caller's slice")
	}
}

func TestCleanKeepsStorableTextAndReplacesTheRest(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", ""},
		{"stats[3]: rtc_codec_stats already holds a row", "stats[3]: rtc_codec_stats already holds a row"},
		{"日本語 ok", "日本語 ok"},
		{"a\x00b", "a\uFFFDb"},
		{"bad \xff byte", "bad \uFFFD byte"},
		{"\xff\x00", "\uFFFD\uFFFD"},
	}
	for _, tt := range tests {
		if got := clean(tt.in); got != tt.want {
			t.Errorf("clean(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
