package main

import (
	"bytes"
	"compress/gzip"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"kohaku/testsupport/fixtures"
	"kohaku/writer/internal/writertest"
)

// webhookMessages returns the fixture webhook bodies, whose reports the fixture log holds.
func webhookMessages(t *testing.T) []writertest.Message {
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

func rtcStatsLog(t *testing.T) []byte {
	t.Helper()
	log, err := fixtures.RTCStatsLog()
	if err != nil {
		t.Fatal(err)
	}
	return log
}

// summary finds the import's summary line in output.
var summary = regexp.MustCompile(`(?m)^import: \d+ lines, .* in all$`)

func TestImportCommand(t *testing.T) {
	db := writertest.EmptyDatabase(t) // the import migrates it
	path := filepath.Join(t.TempDir(), "rtc_stats.jsonl")
	if err := os.WriteFile(path, rtcStatsLog(t), 0o644); err != nil {
		t.Fatal(err)
	}
	want := writertest.Expect(t, webhookMessages(t))
	for _, wantSummary := range []string{
		"import: 208 lines, 8 reports, 208 rows (0 already present), 0 rejected, ",
		"import: 208 lines, 8 reports, 208 rows (208 already present), 0 rejected, ", // again: nothing doubles
	} {
		p := startWriter(t, map[string]string{"KOHAKU_DATABASE_URL": db}, "import", path)
		if code := p.wait(t, 60*time.Second); code != 0 {
			t.Fatalf("import exit code %d, want 0\n%s", code, p.Output())
		}
		if got := summary.FindString(p.Output()); !strings.HasPrefix(got, wantSummary) {
			t.Errorf("summary %q, want %q...\n%s", got, wantSummary, p.Output())
		}
		if d := want.Diff(mustCount(t, writertest.Pool(t, db))); d != "" {
			t.Errorf("after the import: %s", d)
		}
	}
}

func TestImportCommandRejectsABadReport(t *testing.T) {
	db := writertest.Database(t)
	lines := bytes.SplitAfter(rtcStatsLog(t), []byte("\n"))
	// Line 60, in the third report, names another time than the report's first line.
	lines[59] = bytes.Replace(lines[59], []byte(`"timestamp":"2026-`), []byte(`"timestamp":"2027-`), 1)
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(bytes.Join(lines, nil))
	zw.Close()

	p := startWriterInput(t, map[string]string{"KOHAKU_DATABASE_URL": db}, &gz, "import", "-")
	if code := p.wait(t, 60*time.Second); code != 1 {
		t.Fatalf("import exit code %d, want 1\n%s", code, p.Output())
	}
	out := p.Output()
	for _, w := range []string{
		`-:60: the report's members differ from those of its first line 55: "timestamp" is "2027-`,
		"-:55: report 01M9JZ16STSFYWHYSQZ9BM8KAH (lines 55-81): not imported",
		"import: 208 lines, 8 reports, 181 rows (0 already present), 1 rejected, ",
	} {
		if !strings.Contains(out, w) {
			t.Errorf("output does not say %q:\n%s", w, out)
		}
	}
	msgs := webhookMessages(t)
	want := writertest.Expect(t, append(msgs[:2:2], msgs[3:]...))
	if d := want.Diff(mustCount(t, writertest.Pool(t, db))); d != "" {
		t.Errorf("after the import: %s", d)
	}
}
