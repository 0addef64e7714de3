package main

import (
	"context"
	"testing"
)

// TestPoolHasRoomForEveryWriteConnection opens pools (lazily: no server needed) and checks
// that the maximum leaves a connection beside the writing ones, that a larger
// pool_max_conns is kept, and that sessions are named kohaku-writer unless the URL names them.
func TestPoolHasRoomForEveryWriteConnection(t *testing.T) {
	const base = "postgres://postgres@127.0.0.1:1/kohaku?sslmode=disable"
	tests := []struct {
		name    string
		url     string
		writers int
		want    int32
		app     string
	}{
		{"raised above a small pool_max_conns", base + "&pool_max_conns=1", 2, 3, "kohaku-writer"},
		{"raised above the default", base, 64, 65, "kohaku-writer"},
		{"a larger pool_max_conns kept", base + "&pool_max_conns=10", 2, 10, "kohaku-writer"},
		{"the URL's application_name kept", base + "&application_name=writer-a", 64, 65, "writer-a"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pool, err := openPool(context.Background(), tt.url, tt.writers)
			if err != nil {
				t.Fatal(err)
			}
			defer pool.Close()
			if got := pool.Config().MaxConns; got != tt.want {
				t.Errorf("MaxConns = %d, want %d", got, tt.want)
			}
			if got := pool.Config().ConnConfig.RuntimeParams["application_name"]; got != tt.app {
				t.Errorf("application_name = %q, want %q", got, tt.app)
			}
		})
	}
}
