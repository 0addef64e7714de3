package main

import (
	"bytes"
	"errors"
	"fmt"
	"time"

	"kohaku/tools/internal/sim"
)

// reportEvery is the time between two reports of one simulated connection, Sora's default.
const reportEvery = 5 * time.Second

// simulate returns n distinct connection.user-agent bodies made from the Chromium fixtures
// by the simulator: perConn successive reports of each of n/perConn connections, so that
// every body has keys of its own, counters grow from one report to the next, and the
// sora_connection upserts meet the same connection several times, as in production.
func simulate(n, perConn int, seed uint64, start time.Time) ([][]byte, error) {
	t, err := sim.FixtureTemplate()
	if err != nil {
		return nil, err
	}
	conns, err := sim.NewConnections(t, sim.Options{Connections: max(1, (n+perConn-1)/perConn), Channels: 50, Seed: seed}, start)
	if err != nil {
		return nil, err
	}
	out := make([][]byte, 0, n)
	for k := 0; len(out) < n; k++ {
		at := start.Add(time.Duration(k) * reportEvery)
		for i, c := range conns {
			if len(out) == n {
				break
			}
			// Spread the connections' reports over the interval, as Sora does.
			out = append(out, c.Report(at.Add(reportEvery*time.Duration(i)/time.Duration(len(conns)))))
		}
	}
	return out, nil
}

// stampLayout is how Sora writes the envelope's timestamp; its fixed width lets a body be
// re-stamped in place.
const stampLayout = "2006-01-02T15:04:05.000000Z"

// stampAt returns the index in body of the envelope timestamp's text: the first string
// member "timestamp" (the stats elements' timestamps are numbers).
func stampAt(body []byte) (int, error) {
	key := []byte(`"timestamp":"`)
	k := bytes.Index(body, key)
	if k < 0 {
		return 0, errors.New("body has no string timestamp member")
	}
	k += len(key)
	if k+len(stampLayout) >= len(body) || body[k+len(stampLayout)] != '"' {
		return 0, fmt.Errorf("envelope timestamp is not of the form %s", stampLayout)
	}
	return k, nil
}

// stamped returns a copy of body whose envelope timestamp, at index at, is t.
func stamped(body []byte, at int, t time.Time) []byte {
	out := bytes.Clone(body)
	stamp(out, at, t)
	return out
}

// stamp writes t as the envelope timestamp of body, at index at, in place.
func stamp(body []byte, at int, t time.Time) {
	// Formatted apart: AppendFormat may write past the end of what it returns (fractions
	// are written with all nine digits, then cut).
	var buf [len(stampLayout) + 16]byte
	copy(body[at:at+len(stampLayout)], t.UTC().AppendFormat(buf[:0], stampLayout))
}
