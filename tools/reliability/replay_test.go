package reliability

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"kohaku/pkg/normalize"
)

func TestReplayRebuildsIdenticalTables(t *testing.T) {
	p := newPipeline(t, setup{receivers: 1})
	run := steady(5).start(t, p.collectorURLs())
	time.Sleep(3 * time.Second)
	rec := run.stop()
	p.drained(60 * time.Second)
	before := p.contents()

	// Lose every table, as a database restored from nothing would, and rebuild it from the
	// stream: replay migrates the empty database first.
	if err := p.writer.Stop(syscall.SIGTERM, 30*time.Second); err != nil {
		t.Fatalf("after SIGTERM: %v", err)
	}
	p.exec("DROP SCHEMA public CASCADE")
	p.exec("CREATE SCHEMA public")
	p.pool.Reset() // the pool's cached statements describe the dropped tables
	if got := p.contents(); got[normalize.TableConnection] != "missing" {
		t.Fatalf("sora_connection after the drop: %s, want it missing", got[normalize.TableConnection])
	}
	since := p.start.Add(-time.Second).UTC().Format(time.RFC3339)
	replay := start(t, "kohaku-writer replay", binaries.writer, "",
		append(p.streamEnv(), "KOHAKU_DATABASE_URL="+p.dbURL), "replay", "--since", since)
	if err := replay.Wait(2 * time.Minute); err != nil {
		t.Fatal(err)
	}

	after := p.contents()
	for _, table := range slices.Sorted(maps.Keys(before)) {
		if before[table] != after[table] {
			t.Errorf("%s: before the drop %s, after the replay %s", table, before[table], after[table])
		}
	}
	// The writer goes on from where it was: nothing more to write, nothing written twice.
	p.startWriter().waitReady(t, 60*time.Second)
	p.verify(rec.all(), 200)
}

// contents returns, for every table the writer fills, its row count and a digest of all
// its rows, or "missing".
func (p *pipeline) contents() map[string]string {
	t := p.t
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out := map[string]string{}
	for _, table := range append(normalize.StatsTables(), normalize.TableConnection, "kohaku_dead_letter") {
		var exists bool
		if err := p.pool.QueryRow(ctx, "SELECT to_regclass($1) IS NOT NULL", table).Scan(&exists); err != nil {
			t.Fatalf("look up %s: %v", table, err)
		}
		if !exists {
			out[table] = "missing"
			continue
		}
		var n int
		var digest string
		// Ordered by the text of the whole row: the same rows give the same digest, whatever
		// order they were written in.
		q := fmt.Sprintf("SELECT count(*), coalesce(md5(string_agg(r::text, E'\\n' ORDER BY r::text)), '') FROM %s r",
			pgx.Identifier{table}.Sanitize())
		if err := p.pool.QueryRow(ctx, q).Scan(&n, &digest); err != nil {
			t.Fatalf("digest %s: %v", table, err)
		}
		out[table] = fmt.Sprintf("%d rows, md5 %s", n, digest)
	}
	return out
}
