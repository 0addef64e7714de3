package main

import (
	"strings"
	"testing"
	"time"
)

func TestNewIDIsAULIDOfTheGivenTime(t *testing.T) {
	tests := []struct {
		name   string
		at     time.Time
		prefix string // the 10 characters that encode the milliseconds
	}{
		{name: "epoch", at: time.UnixMilli(0), prefix: "0000000000"},
		{name: "ulid spec example", at: time.UnixMilli(1469918176385), prefix: "01ARYZ6S41"},
		{name: "largest time", at: time.UnixMilli(1<<48 - 1), prefix: "7ZZZZZZZZZ"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id, err := newID(tt.at)
			if err != nil {
				t.Fatal(err)
			}
			if len(id) != 26 {
				t.Errorf("len(%q) = %d, want 26", id, len(id))
			}
			if !strings.HasPrefix(id, tt.prefix) {
				t.Errorf("newID = %q, want prefix %q", id, tt.prefix)
			}
			if i := strings.IndexFunc(id, func(r rune) bool { return !strings.ContainsRune(crockford, r) }); i >= 0 {
				t.Errorf("newID = %q has %q outside Crockford base32", id, id[i])
			}
		})
	}
}

func TestNewConnectionsShareTheSessionOnly(t *testing.T) {
	conns, err := newConnections(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if len(conns) != 2 {
		t.Fatalf("got %d connections, want 2", len(conns))
	}
	if conns[0].sessionID != conns[1].sessionID {
		t.Errorf("session ids differ: %q, %q", conns[0].sessionID, conns[1].sessionID)
	}
	if conns[0].connectionID == conns[1].connectionID {
		t.Errorf("both connections have id %q", conns[0].connectionID)
	}
}
