package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"kohaku/writer/internal/writertest"
)

// A writer whose database lacks a column it stores exits at once with an error naming the
// table and the column, rather than retrying every COPY without end: whether the migrations
// are off (the database is older than the writer) or were recorded as applied while the
// column is gone.
func TestWriterRefusesADatabaseThatLacksAColumn(t *testing.T) {
	path := filepath.Join(t.TempDir(), "rtc_stats.jsonl")
	if err := os.WriteFile(path, rtcStatsLog(t), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		env  map[string]string
		args []string
	}{
		{name: "import with KOHAKU_MIGRATE=false", env: map[string]string{"KOHAKU_MIGRATE": "false"}, args: []string{"import", path}},
		{name: "import after the migrations", args: []string{"import", path}},
		{name: "migrate", args: []string{"migrate"}},
		{name: "run after the migrations", env: map[string]string{"KOHAKU_NATS_URL": "nats://127.0.0.1:1"}, args: []string{"run"}},
		{name: "run with KOHAKU_MIGRATE=false", env: map[string]string{"KOHAKU_MIGRATE": "false", "KOHAKU_NATS_URL": "nats://127.0.0.1:1"}, args: []string{"run"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			db := writertest.Database(t)
			pool := writertest.Pool(t, db)
			// As a database of the release before the column was added, whose
			// migrations this writer may not run.
			if _, err := pool.Exec(context.Background(), `ALTER TABLE rtc_outbound_rtp_stats DROP COLUMN total_encoded_bytes_target`); err != nil {
				t.Fatal(err)
			}
			env := map[string]string{"KOHAKU_DATABASE_URL": db}
			for k, v := range tt.env {
				env[k] = v
			}
			p := startWriter(t, env, tt.args...)
			if code := p.wait(t, 60*time.Second); code != 1 {
				t.Fatalf("exit code %d, want 1\n%s", code, p.Output())
			}
			if w := "table rtc_outbound_rtp_stats lacks the column total_encoded_bytes_target"; !strings.Contains(p.Output(), w) {
				t.Errorf("output does not say %q:\n%s", w, p.Output())
			}
			if d := writertest.Expect(t, nil).Diff(mustCount(t, pool)); d != "" {
				t.Errorf("rows were stored: %s", d)
			}
		})
	}
}
