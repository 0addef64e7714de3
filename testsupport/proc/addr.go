package proc

import (
	"fmt"
	"net"
	"testing"
)

// PickAddr returns a loopback host:port whose port was free a moment ago, for a program
// whose address must be known before it starts (an admin endpoint, HAProxy's backends).
// Another process may take the port in between, a small risk the tests accept.
func PickAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// FreeAddr is PickAddr for the test t, which fails when no port is free.
func FreeAddr(t testing.TB) string {
	t.Helper()
	addr, err := PickAddr()
	if err != nil {
		t.Fatal(err)
	}
	return addr
}
