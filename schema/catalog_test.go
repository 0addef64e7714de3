package schema

import (
	"fmt"
	"testing"

	"kohaku/pkg/normalize"
	"kohaku/schema/internal/columns"
)

// migratedColumns returns the columns that the embedded migrations create, read from
// their SQL as go generate reads them.
func migratedColumns(t testing.TB) columns.Tables {
	t.Helper()
	ms := allMigrations(t)
	names, sqls := make([]string, len(ms)), make([]string, len(ms))
	for k, m := range ms {
		names[k], sqls[k] = fmt.Sprintf("%04d_%s.sql", m.Version, m.Name), m.SQL
	}
	have, err := columns.FromMigrations(names, sqls)
	if err != nil {
		t.Fatal(err)
	}
	return have
}

// The migrations create exactly the columns of normalize's catalog: 0001_tables.sql, as
// released, and the columns added since, which go generate writes as new migrations.
func TestMigrationsCreateTheCatalogColumns(t *testing.T) {
	adds, err := columns.Missing(normalize.StatsTables(), columns.Catalog(), migratedColumns(t))
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range adds {
		t.Errorf("%s.%s %s is in normalize's catalog and no migration adds it: run go generate ./schema", a.Table, a.Column.Name, a.Column.Type)
	}
}
