package proc

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
)

// ephemeralRange is the Linux file that holds the range of ports the kernel gives to
// outgoing connections and to listeners on port 0.
const ephemeralRange = "/proc/sys/net/ipv4/ip_local_port_range"

// pickFloor is the lowest port PickAddr picks below the ephemeral range: under it lie
// the well-known and registered ports of services a machine may start later.
const pickFloor = 20000

// PickAddr returns a loopback host:port whose port was free a moment ago, for a program
// whose address must be known before it starts (an admin endpoint, HAProxy's backends).
//
// The port lies below the kernel's ephemeral range where that range is known: a port
// from that range can be taken, between this call and the program's listen, by any
// outgoing connection on the machine (a test of another package dialling PostgreSQL,
// say), which happened in CI. Below it only another listener can take the port, and
// the pick is random, so that two callers rarely pick the same one. Where the range is
// not known, the kernel picks, from its ephemeral range.
func PickAddr() (string, error) {
	if lo, ok := ephemeralLow(); ok && lo > pickFloor {
		for range 100 {
			port := pickFloor + rand.IntN(lo-pickFloor)
			if addr, ok := listenable(net.JoinHostPort("127.0.0.1", strconv.Itoa(port))); ok {
				return addr, nil
			}
		}
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// ephemeralLow reads the lowest port of the kernel's ephemeral range.
func ephemeralLow() (int, bool) {
	b, err := os.ReadFile(ephemeralRange)
	if err != nil {
		return 0, false
	}
	fields := strings.Fields(string(b))
	if len(fields) != 2 {
		return 0, false
	}
	lo, err := strconv.Atoi(fields[0])
	return lo, err == nil
}

// listenable reports whether addr can be listened on now.
func listenable(addr string) (string, bool) {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return "", false
	}
	defer l.Close()
	return l.Addr().String(), true
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
