package main

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"kohaku/testsupport/dbtest"
)

func TestParseSchedstat(t *testing.T) {
	tests := []struct {
		in      string
		want    schedTimes
		wantErr bool
	}{
		{"14512024177 258646041 15390\n", schedTimes{14512024177, 258646041}, false},
		{"0 0 0", schedTimes{}, false},
		{"14512024177 258646041", schedTimes{}, true},
		{"x 1 2", schedTimes{}, true},
	}
	for _, tt := range tests {
		got, err := parseSchedstat([]byte(tt.in))
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("parseSchedstat(%q) = %+v, %v; want %+v, error %t", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
}

// TestBackendTimesCountsOnlyPostgres: this test's own process is not a PostgreSQL backend,
// so a pid that a remote server's backend happens to share here counts nothing.
func TestBackendTimesCountsOnlyPostgres(t *testing.T) {
	if got := backendTimes([]uint32{uint32(os.Getpid())}); got != (schedTimes{}) {
		t.Errorf("backendTimes(this process) = %+v, want nothing", got)
	}
	b, err := os.ReadFile("/proc/self/schedstat")
	if err != nil {
		t.Fatal(err) // the benchmark reads /proc: Linux only
	}
	st, err := parseSchedstat(b)
	if err != nil || st.OnCPU <= 0 || st.OnCPU > time.Hour {
		t.Errorf("this process's schedstat %q reads %+v, %v", b, st, err)
	}
}

// TestBackendTimesFollowAQuery reads the times of a backend of the test server, which like
// the benchmark's must run on this machine, around a query that keeps it busy.
func TestBackendTimesFollowAQuery(t *testing.T) {
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dbtest.Database(t))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	pids := []uint32{conn.PgConn().PID()}
	before := backendTimes(pids)
	if before.OnCPU <= 0 {
		t.Fatalf("backend %d: no times read (is the test server on this machine?)", pids[0])
	}
	if _, err := conn.Exec(ctx, "SELECT count(*) FROM generate_series(1, 3000000)"); err != nil {
		t.Fatal(err)
	}
	if d := backendTimes(pids).sub(before); d.OnCPU < 10*time.Millisecond {
		t.Errorf("backend ran %s for three million rows, want more", d.OnCPU)
	}
}

// TestPostgresCPUCountsEndedBackends: a backend's CPU time stays in the server's figure
// after its connection closed, as CopyFrom's connections close before the figure is read.
func TestPostgresCPUCountsEndedBackends(t *testing.T) {
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dbtest.Database(t))
	if err != nil {
		t.Fatal(err)
	}
	pid := int(conn.PgConn().PID())
	if !isPostgres(pid) {
		t.Fatalf("backend %d is not a process of this machine (is the test server on this machine?)", pid)
	}
	before := postgresCPU()
	if _, err := conn.Exec(ctx, "SELECT count(*) FROM generate_series(1, 3000000)"); err != nil {
		t.Fatal(err)
	}
	busy, err := cpuTime(pid)
	if err != nil {
		t.Fatal(err)
	}
	conn.Close(ctx)
	for deadline := time.Now().Add(10 * time.Second); isPostgres(pid); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("backend %d still runs 10 s after its connection closed", pid)
		}
	}
	if d := postgresCPU() - before; d < busy {
		t.Errorf("postgres CPU grew by %s after its backend, which used %s, ended", d, busy)
	}
}
