package writertest

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"kohaku/schema"
	"kohaku/testsupport/dbtest"
	"kohaku/testsupport/testenv"
)

// packageDB is the database that Run created for the test package, or why it could not.
var packageDB struct {
	url string
	err error
}

// Run runs a test package's tests with a database of their own on the test PostgreSQL
// server (KOHAKU_TEST_DATABASE_URL, default the local server's "postgres" database): it
// creates the database first and drops it at the end. It returns the exit code; call it
// from TestMain.
func Run(m *testing.M) int {
	var drop func() error
	packageDB.url, drop, packageDB.err = dbtest.NewDatabase(context.Background())
	code := m.Run()
	if packageDB.err == nil {
		if err := drop(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			code = 1
		}
	}
	return code
}

// Database returns the URL of a fresh, migrated schema of the package's database: the URL
// sets search_path to it, so whoever connects with the URL sees only its tables. The
// schema is dropped when the test ends. Without Run or a database it skips the test, or
// fails it when CI is set.
func Database(t testing.TB) string {
	t.Helper()
	return newSchema(t, true)
}

// EmptyDatabase is Database without the migrations: a database the writer has never seen.
func EmptyDatabase(t testing.TB) string {
	t.Helper()
	return newSchema(t, false)
}

func newSchema(t testing.TB, migrate bool) string {
	t.Helper()
	if packageDB.url == "" && packageDB.err == nil {
		t.Fatal("writertest.Database needs writertest.Run in TestMain")
	}
	if packageDB.err != nil {
		testenv.Unavailable(t, "PostgreSQL (KOHAKU_TEST_DATABASE_URL)", packageDB.err)
	}
	u := dbtest.Schema(t, packageDB.url)
	if migrate {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		conn, err := pgx.Connect(ctx, u)
		if err != nil {
			t.Fatalf("connect to the test schema: %v", err)
		}
		defer conn.Close(ctx)
		if _, err := schema.Migrate(ctx, conn, schema.Options{}); err != nil {
			t.Fatalf("migrate the test schema: %v", err)
		}
	}
	return u
}
