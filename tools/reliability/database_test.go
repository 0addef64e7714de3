package reliability

import (
	"context"
	"net/url"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// blockDatabase makes the pipeline's database refuse connections and ends those it has,
// as an outage does, until allowDatabase or the end of the test.
func (p *pipeline) blockDatabase() {
	t := p.t
	t.Helper()
	name := p.databaseName()
	p.adminExec("ALTER DATABASE " + pgx.Identifier{name}.Sanitize() + " ALLOW_CONNECTIONS false")
	t.Cleanup(p.allowDatabase)
	p.adminExec("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()", name)
}

// allowDatabase ends blockDatabase.
func (p *pipeline) allowDatabase() {
	p.t.Helper()
	p.adminExec("ALTER DATABASE " + pgx.Identifier{p.databaseName()}.Sanitize() + " ALLOW_CONNECTIONS true")
}

func (p *pipeline) databaseName() string {
	u, err := url.Parse(p.dbURL)
	if err != nil {
		p.t.Fatalf("database URL: %v", err)
	}
	return strings.TrimPrefix(u.Path, "/")
}

// adminExec runs sql in the maintenance database "postgres" of the pipeline's server.
func (p *pipeline) adminExec(sql string, args ...any) {
	t := p.t
	t.Helper()
	u, err := url.Parse(p.dbURL)
	if err != nil {
		t.Fatalf("database URL: %v", err)
	}
	u.Path = "/postgres"
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, u.String())
	if err != nil {
		t.Fatalf("connect to %s: %v", u.Redacted(), err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, sql, args...); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

// exec runs sql in the pipeline's database.
func (p *pipeline) exec(sql string) {
	t := p.t
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := p.pool.Exec(ctx, sql); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}
