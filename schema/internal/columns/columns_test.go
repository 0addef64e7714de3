package columns

import (
	"reflect"
	"strings"
	"testing"
)

func TestFromMigrationsFollowsColumnChanges(t *testing.T) {
	tests := []struct {
		name    string
		sqls    []string
		want    Tables
		wantErr string
	}{
		{
			name: "create table with constraints, defaults and a reserved name",
			sqls: []string{`-- a comment; with a semicolon
CREATE TABLE IF NOT EXISTS t (
    time timestamptz NOT NULL,
    "binary" bigint,
    x double precision DEFAULT 0,
    j jsonb NOT NULL DEFAULT '{}'::jsonb CHECK (j <> 'x;y'),
    CONSTRAINT t_key UNIQUE (time, x)
);
CREATE INDEX IF NOT EXISTS t_time_idx ON t (time);
COMMENT ON TABLE t IS 'one; two';`},
			want: Tables{"t": {{"time", "timestamptz"}, {"binary", "bigint"}, {"x", "double precision"}, {"j", "jsonb"}}},
		},
		{
			name: "later migrations add, drop and retype columns",
			sqls: []string{
				"CREATE TABLE t (a bigint, b text);",
				`ALTER TABLE t ADD COLUMN IF NOT EXISTS "c" bigint;
ALTER TABLE t ADD d boolean, DROP COLUMN IF EXISTS b;
ALTER TABLE ONLY t ALTER COLUMN a TYPE double precision;
ALTER TABLE t ALTER COLUMN c SET NOT NULL, ADD CONSTRAINT t_c CHECK (c > 0);
ALTER TABLE t ADD COLUMN IF NOT EXISTS c bigint;`,
			},
			want: Tables{"t": {{"a", "double precision"}, {"c", "bigint"}, {"d", "boolean"}}},
		},
		{
			name: "a DO block and an UPDATE change no column",
			sqls: []string{
				"CREATE TABLE t (a text);",
				`DO $$
BEGIN
    ALTER TABLE t ADD CONSTRAINT t_a CHECK (a IN ('x', 'y'));
    ALTER TABLE t ADD COLUMN never text;
EXCEPTION WHEN duplicate_object THEN NULL;
END $$;
UPDATE t SET a = 'x;' WHERE a IS NULL;`,
			},
			want: Tables{"t": {{"a", "text"}}},
		},
		{
			name: "create table if not exists keeps the first definition",
			sqls: []string{"CREATE TABLE t (a text);", "CREATE TABLE IF NOT EXISTS t (b text);"},
			want: Tables{"t": {{"a", "text"}}},
		},
		{
			name: "drop table",
			sqls: []string{"CREATE TABLE t (a text); CREATE TABLE u (b int8);", "DROP TABLE IF EXISTS t;"},
			want: Tables{"u": {{"b", "bigint"}}},
		},
		{name: "rename is refused", sqls: []string{"CREATE TABLE t (a text);", "ALTER TABLE t RENAME COLUMN a TO b;"}, wantErr: "RENAME"},
		{name: "like is refused", sqls: []string{"CREATE TABLE t (LIKE u);"}, wantErr: "LIKE"},
		{name: "a column of an unknown table is refused", sqls: []string{"ALTER TABLE t ADD COLUMN a text;"}, wantErr: "no earlier migration creates the table"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			names := make([]string, len(tt.sqls))
			for k := range names {
				names[k] = "m.sql"
			}
			got, err := FromMigrations(names, tt.sqls)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want one saying %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestMissingListsOnlyWhatAnAddedColumnMends(t *testing.T) {
	want := Tables{"t": {{"a", "bigint"}, {"b", "text"}, {"extra", "jsonb"}}}
	tests := []struct {
		name    string
		have    Tables
		want    []Addition
		wantErr string
	}{
		{name: "up to date", have: Tables{"t": {{"a", "bigint"}, {"extra", "jsonb"}, {"b", "text"}}}},
		{name: "a column to add", have: Tables{"t": {{"a", "bigint"}, {"extra", "jsonb"}}}, want: []Addition{{"t", Column{"b", "text"}}}},
		{name: "a missing table", have: Tables{}, wantErr: "table t: no migration creates it"},
		{name: "another type", have: Tables{"t": {{"a", "text"}, {"b", "text"}, {"extra", "jsonb"}}}, wantErr: "the migrations make it text, the catalog wants bigint"},
		{name: "a column the catalog lacks", have: Tables{"t": {{"a", "bigint"}, {"b", "text"}, {"extra", "jsonb"}, {"z", "text"}}}, wantErr: "the catalog has no such column"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Missing([]string{"t"}, want, tt.have)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want one saying %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

// The generated SQL, read back, adds exactly the columns it was made from.
func TestAddSQLReadsBackAsTheAdditions(t *testing.T) {
	adds := []Addition{
		{"t", Column{"new_one", "bigint"}},
		{"t", Column{"binary", "double precision"}},
		{"u", Column{"x", "jsonb"}},
	}
	sql := AddSQL(adds)
	for _, line := range []string{
		`ALTER TABLE "t" ADD COLUMN IF NOT EXISTS "new_one" bigint;`,
		`ALTER TABLE "u" ADD COLUMN IF NOT EXISTS "x" jsonb;`,
	} {
		if !strings.Contains(sql, line+"\n") {
			t.Errorf("AddSQL lacks the line %s:\n%s", line, sql)
		}
	}
	got, err := FromMigrations([]string{"0001.sql", "0002.sql"}, []string{"CREATE TABLE t (a text); CREATE TABLE u (a text);", sql})
	if err != nil {
		t.Fatal(err)
	}
	want := Tables{
		"t": {{"a", "text"}, {"new_one", "bigint"}, {"binary", "double precision"}},
		"u": {{"a", "text"}, {"x", "jsonb"}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("read back %v, want %v", got, want)
	}
	if got, want := MigrationName(adds[:1]), "add_new_one"; got != want {
		t.Errorf("MigrationName of one column = %q, want %q", got, want)
	}
	if got, want := MigrationName(adds), "add_3_columns"; got != want {
		t.Errorf("MigrationName of three columns = %q, want %q", got, want)
	}
}
