package reliability

import (
	"context"
	"time"

	"kohaku/testsupport/dbtest"
)

// blockDatabase makes the pipeline's database refuse connections and ends those it has,
// as an outage does, until allowDatabase or the end of the test.
func (p *pipeline) blockDatabase() {
	p.t.Helper()
	dbtest.BlockDatabase(p.t, p.dbURL)
}

// allowDatabase ends blockDatabase.
func (p *pipeline) allowDatabase() {
	p.t.Helper()
	dbtest.AllowDatabase(p.t, p.dbURL)
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
