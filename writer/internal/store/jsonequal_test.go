package store

import (
	"context"
	"testing"

	"kohaku/writer/internal/writertest"
)

// TestJSONBEqualAgreesWithPostgreSQL holds jsonbEqual to the database's own jsonb equality:
// wherever Go decides, it decides as PostgreSQL does.
func TestJSONBEqualAgreesWithPostgreSQL(t *testing.T) {
	pool := writertest.Pool(t, writertest.EmptyDatabase(t))
	tests := []struct {
		name     string
		a, b     string
		undecide bool // Go leaves it to the database
	}{
		{"same bytes", `{"a":1}`, `{"a":1}`, false},
		{"members in another order", `{"a":1,"b":[1,2]}`, `{"b":[1,2],"a":1}`, false},
		{"other value", `{"a":1}`, `{"a":2}`, false},
		{"other member", `{"a":1}`, `{"b":1}`, false},
		{"one member more", `{"a":1}`, `{"a":1,"b":1}`, false},
		{"a member more among several", `{"a":1,"b":{"c":2},"d":[3]}`, `{"a":1,"appRevision":"2","b":{"c":2},"d":[3]}`, false},
		{"an escaped name and its text", `{"a\u0062":1}`, `{"ab":1}`, false},
		{"an escaped name more", `{"a":1}`, `{"a":1,"\u0062":1}`, false},
		{"a name repeated in one only", `{"a":1,"a":1}`, `{"a":1}`, false},
		{"a repeated name and one more", `{"a":1,"a":2,"b":1}`, `{"a":2}`, false},
		{"a trailing comma", `{"a":1,}`, `{"a":1,"b":2}`, true},
		{"no comma", `{"a":1 "c":3}`, `{"a":1,"b":2}`, true},
		{"text after the object", `{"a":1} x`, `{"b":1}`, true},
		{"empty objects", `{}`, `{ }`, false},
		{"empty and not", `{}`, `{"a":null}`, false},
		{"the last of a repeated key counts", `{"a":1,"a":2}`, `{"a":2}`, false},
		{"the first of a repeated key does not", `{"a":1,"a":2}`, `{"a":1}`, false},
		{"1.0 and 1", `{"a":1.0}`, `{"a":1}`, false},
		{"1e2 and 100", `[1e2]`, `[100]`, false},
		{"1E+2 and 100.00", `[1E+2]`, `[100.00]`, false},
		{"0.5 and 5e-1", `[0.5]`, `[5e-1]`, false},
		{"-0 and 0", `[-0]`, `[0]`, false},
		{"0e5 and 0.000", `[0e5]`, `[0.000]`, false},
		{"10 and 1", `[10]`, `[1]`, false},
		{"-1 and 1", `[-1]`, `[1]`, false},
		{"1 and 1.0000000000000000000001", `[1]`, `[1.0000000000000000000001]`, false},
		{"escaped and plain string", `["caf\u00e9"]`, `["café"]`, false},
		{"escaped slash", `["a\/b"]`, `["a/b"]`, false},
		{"string and number", `["1"]`, `[1]`, false},
		{"array order matters", `[1,2]`, `[2,1]`, false},
		{"null and false", `[null]`, `[false]`, false},
		{"nested objects", `{"a":{"x":1,"y":[{"k":"v"}]}}`, `{"a":{"y":[{"k":"v"}],"x":1.0}}`, false},
		{"space does not matter", `{ "a" : [ 1 , 2 ] }`, `{"a":[1,2]}`, false},
		{"an exponent too long to normalize", `[1e1000000000]`, `[1]`, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			equal, ok := jsonbEqual([]byte(tt.a), []byte(tt.b))
			if ok == tt.undecide {
				t.Fatalf("jsonbEqual decided: %v; want decided: %v", ok, !tt.undecide)
			}
			if !ok {
				return
			}
			var want bool
			if err := pool.QueryRow(context.Background(), "SELECT $1::jsonb = $2::jsonb", tt.a, tt.b).Scan(&want); err != nil {
				t.Fatalf("PostgreSQL: %v", err)
			}
			if equal != want {
				t.Errorf("jsonbEqual(%s, %s) = %v, PostgreSQL says %v", tt.a, tt.b, equal, want)
			}
		})
	}
}
