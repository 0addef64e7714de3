package store_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"kohaku/schema"
	"kohaku/testsupport/testenv"
	"kohaku/writer/internal/store"
	"kohaku/writer/internal/writertest"
)

// timescalePool returns a one-connection pool on the TimescaleDB test server whose
// search_path is a fresh schema, dropped when the test ends.
func timescalePool(t *testing.T) *pgxpool.Pool {
	t.Helper()
	cfg, err := pgxpool.ParseConfig(testenv.TimescaleDB(t))
	if err != nil {
		t.Fatalf("KOHAKU_TEST_TIMESCALEDB_URL: %v", err)
	}
	var b [6]byte
	rand.Read(b[:])
	name := "kohaku_test_" + hex.EncodeToString(b[:])
	cfg.MaxConns = 1 // the test server takes one connection at a time
	cfg.AfterConnect = func(ctx context.Context, c *pgx.Conn) error {
		// SET rather than a startup parameter: the test server resets sessions, not this.
		_, err := c.Exec(ctx, "CREATE SCHEMA IF NOT EXISTS "+name+"; SET search_path TO "+name)
		return err
	}
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		t.Fatalf("pool: %v", err)
	}
	t.Cleanup(func() {
		if _, err := pool.Exec(context.Background(), "DROP SCHEMA IF EXISTS "+name+" CASCADE"); err != nil {
			t.Errorf("drop schema %s: %v", name, err)
		}
		pool.Close()
	})
	return pool
}

// TestWriteIntoTimescaleDBHypertables stores fixtures through COPY into the hypertables of a
// real TimescaleDB, then again through the duplicate path, and checks the rows are in chunks.
func TestWriteIntoTimescaleDBHypertables(t *testing.T) {
	ctx := context.Background()
	pool := timescalePool(t)
	res, err := schema.MigratePool(ctx, pool, schema.Options{Logger: writertest.Logger(t)})
	if err != nil {
		t.Fatalf("migrate: %v", err)
	}
	if !res.TimescaleDB || len(res.Hypertables) == 0 {
		t.Fatalf("migrate on TimescaleDB: %+v, want hypertables", res)
	}
	st := store.New(pool, writertest.Logger(t), prometheus.NewRegistry())
	msgs := writertest.Messages(t, 12)
	want := writertest.Expect(t, msgs)

	for _, pass := range []string{"first write", "the same messages again"} {
		if _, err := st.Write(ctx, messages(t, msgs)); err != nil {
			t.Fatalf("%s: %v", pass, err)
		}
		got, err := writertest.Count(ctx, pool)
		if err != nil {
			t.Fatal(err)
		}
		if d := want.Diff(got); d != "" {
			t.Fatalf("after %s: %s", pass, d)
		}
	}
	// A report whose row differs from a stored one with the same natural key: compared
	// with the hypertable's row, and kept as a conflict.
	first, other, _ := reportsWithinAMicrosecond(t)
	if _, err := st.Write(ctx, []store.Message{first}); err != nil {
		t.Fatal(err)
	}
	if res, err := st.Write(ctx, []store.Message{other}); err != nil || res.Conflicts != 1 || res.Duplicates != 1 {
		t.Fatalf("write a conflicting report: %+v, %v; want 1 conflict and 1 duplicate", res, err)
	}
	var chunks int
	err = pool.QueryRow(ctx, `SELECT count(*) FROM timescaledb_information.chunks
		WHERE hypertable_schema = current_schema() AND hypertable_name = 'rtc_inbound_rtp_stats'`).Scan(&chunks)
	if err != nil {
		t.Fatal(err)
	}
	if chunks == 0 {
		t.Error("rtc_inbound_rtp_stats has no chunk: the rows did not go into the hypertable")
	}
}
