package main

import (
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"time"

	"kohaku/pkg/sora"
)

// connection is what stays the same across the reports of one peer connection.
type connection struct {
	peer         string // "pc1" or "pc2", the page's name for the peer connection
	clientID     string
	sessionID    string
	connectionID string
}

// newConnections returns the two connections of one capture: different connection ids in
// one session, as two clients of the same Sora channel would have.
func newConnections(now time.Time) ([]connection, error) {
	session, err := newID(now)
	if err != nil {
		return nil, err
	}
	var out []connection
	for _, peer := range []string{"pc1", "pc2"} {
		id, err := newID(now)
		if err != nil {
			return nil, err
		}
		out = append(out, connection{peer: peer, clientID: "capture-stats-" + peer, sessionID: session, connectionID: id})
	}
	return out, nil
}

// wrap builds the message Sora would send for one getStats() report captured at at.
// Each stats element is kept byte for byte: it is the browser's own serialization. The
// bundle_id is a field that only newer Sora versions add, set so that fixtures exercise the
// "keep unknown fields" rule.
func wrap(c connection, stats json.RawMessage, at time.Time) (sora.UserAgent, error) {
	id, err := newID(at)
	if err != nil {
		return sora.UserAgent{}, err
	}
	var elements []json.RawMessage
	if err := json.Unmarshal(stats, &elements); err != nil {
		return sora.UserAgent{}, fmt.Errorf("report of %s: want an array of stats: %w", c.peer, err)
	}
	return sora.UserAgent{
		Type:         sora.TypeUserAgent,
		ID:           id,
		Timestamp:    at.UTC().Format("2006-01-02T15:04:05.000000Z"),
		Label:        "WebRTC SFU Sora",
		Version:      "2025.1.0",
		NodeName:     "sora@127.0.0.1",
		Multistream:  true,
		Simulcast:    false,
		Spotlight:    false,
		Role:         "sendrecv",
		ChannelID:    "kohaku-fixture",
		ClientID:     c.clientID,
		BundleID:     c.connectionID, // each connection is a bundle of its own here
		SessionID:    c.sessionID,
		ConnectionID: c.connectionID,
		Stats:        elements,
	}, nil
}

// crockford is the Crockford base32 alphabet that ULIDs, and so Sora's ids, use.
const crockford = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"

// newID returns a 26-character ULID-like id: 48 bits of milliseconds since the epoch,
// then 80 random bits, in Crockford base32 (https://github.com/ulid/spec).
func newID(at time.Time) (string, error) {
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], uint64(at.UnixMilli())<<16)
	if _, err := rand.Read(b[6:]); err != nil {
		return "", fmt.Errorf("random id: %w", err)
	}
	hi := binary.BigEndian.Uint64(b[:8])
	lo := binary.BigEndian.Uint64(b[8:])
	var out [26]byte
	// 26 characters hold 130 bits: the first character carries only the top 3 bits.
	for i := 25; i >= 0; i-- {
		out[i] = crockford[lo&31]
		lo = lo>>5 | hi<<59
		hi >>= 5
	}
	return string(out[:]), nil
}
