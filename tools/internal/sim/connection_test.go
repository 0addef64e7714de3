package sim

import (
	"encoding/json"
	"math"
	"strings"
	"testing"
	"time"

	"kohaku/pkg/sora"
)

// cumulative lists webrtc-stats members that the specification defines as counters: the
// simulator must never report a smaller value than before.
var cumulative = []string{
	"bytesSent", "bytesReceived", "headerBytesSent", "headerBytesReceived", "packetsSent",
	"packetsReceived", "packetsLost", "framesEncoded", "framesDecoded", "framesSent",
	"framesReceived", "keyFramesEncoded", "keyFramesDecoded", "totalSamplesReceived",
	"concealedSamples", "jitterBufferDelay", "jitterBufferEmittedCount", "totalEncodeTime",
	"totalDecodeTime", "qpSum", "nackCount", "totalRoundTripTime", "roundTripTimeMeasurements",
	"totalSamplesDuration", "totalAudioEnergy", "frames", "messagesSent", "messagesReceived",
	"requestsSent", "responsesReceived", "reportsSent", "totalSamplesCount", "totalPlayoutDelay",
}

func newTestConnections(t *testing.T, o Options) []*Connection {
	t.Helper()
	tmpl, err := FixtureTemplate()
	if err != nil {
		t.Fatalf("FixtureTemplate: %v", err)
	}
	conns, err := NewConnections(tmpl, o, time.Date(2026, 11, 29, 6, 0, 0, 0, time.UTC))
	if err != nil {
		t.Fatalf("NewConnections: %v", err)
	}
	return conns
}

// decodedReport is what the tests look at in a report.
type decodedReport struct {
	Role         string           `json:"role"`
	ChannelID    string           `json:"channel_id"`
	SessionID    string           `json:"session_id"`
	ConnectionID string           `json:"connection_id"`
	Stats        []map[string]any `json:"stats"`
}

func decode(t *testing.T, body []byte) decodedReport {
	t.Helper()
	var r decodedReport
	if err := json.Unmarshal(body, &r); err != nil {
		t.Fatalf("report is not JSON: %v\n%s", err, body)
	}
	return r
}

func TestReportsPassValidation(t *testing.T) {
	conns := newTestConnections(t, Options{Connections: 40, Channels: 3, Seed: 1})
	tmpl := conns[0].t
	node := NewNode(tmpl, 1)
	now := time.Now()
	for tick := range 10 {
		at := now.Add(time.Duration(tick) * 5 * time.Second)
		for _, c := range conns {
			if err := sora.Validate(sora.TypeUserAgent, c.Report(at)); err != nil {
				t.Fatalf("tick %d, %s connection %s: %v", tick, c.Role, c.ConnectionID, err)
			}
			if err := sora.Validate(sora.TypeConnectionRTC, c.Webhook(at.Add(time.Second))); err != nil {
				t.Fatalf("tick %d, %s connection %s, webhook: %v", tick, c.Role, c.ConnectionID, err)
			}
		}
		if err := sora.Validate(sora.TypeErlangVM, node.Report(at)); err != nil {
			t.Fatalf("tick %d, node report: %v", tick, err)
		}
	}
}

func TestCountersNeverDecrease(t *testing.T) {
	conns := newTestConnections(t, Options{Connections: 12, Channels: 2, Seed: 7})
	start := time.Now()
	for _, c := range conns {
		prev := map[string]float64{} // element id + member -> value
		var prevBytes float64
		for tick := range 40 {
			r := decode(t, c.Report(start.Add(time.Duration(tick)*time.Second)))
			var bytes float64
			for _, s := range r.Stats {
				id := s["id"].(string)
				for _, name := range append(cumulative, "timestamp") {
					v, ok := s[name].(float64)
					if !ok {
						continue
					}
					key := id + "." + name
					if p, seen := prev[key]; seen && v < p {
						t.Fatalf("connection %s (%s), tick %d: %s went from %v down to %v", c.ClientID, c.Role, tick, key, p, v)
					}
					prev[key] = v
				}
				if s["type"] == "transport" {
					bytes = s["bytesSent"].(float64) + s["bytesReceived"].(float64)
				}
			}
			if tick > 0 && bytes <= prevBytes {
				t.Fatalf("connection %s, tick %d: transport bytes did not grow (%v then %v)", c.ClientID, tick, prevBytes, bytes)
			}
			prevBytes = bytes
		}
	}
}

func TestGaugesStayPlausible(t *testing.T) {
	conns := newTestConnections(t, Options{Connections: 20, Channels: 1, Seed: 3})
	start := time.Now()
	var lossSeen bool
	for _, c := range conns {
		for tick := range 40 {
			r := decode(t, c.Report(start.Add(time.Duration(tick)*2*time.Second)))
			for _, s := range r.Stats {
				where := s["id"].(string)
				num := func(name string) (float64, bool) { v, ok := s[name].(float64); return v, ok }
				if v, ok := num("roundTripTime"); ok && v != 0 && (v < 0.001 || v > 1) {
					t.Errorf("%s: roundTripTime %v s is not plausible", where, v)
				}
				if v, ok := num("audioLevel"); ok && (v < 0 || v > 1) {
					t.Errorf("%s: audioLevel %v outside [0, 1]", where, v)
				}
				if v, ok := num("fractionLost"); ok && (v < 0 || v > 1) {
					t.Errorf("%s: fractionLost %v outside [0, 1]", where, v)
				}
				if v, ok := num("packetsLost"); ok && v > 0 {
					lossSeen = true
				}
				if w, ok := num("frameWidth"); ok {
					h, _ := num("frameHeight")
					if math.Mod(w, 2) != 0 || math.Abs(w/h-4.0/3) > 0.01 {
						t.Errorf("%s: frame %vx%v is odd or not the captured 4:3", where, w, h)
					}
				}
				if v, ok := num("framesPerSecond"); ok && (v < 1 || v > 60) {
					t.Errorf("%s: framesPerSecond %v", where, v)
				}
			}
		}
	}
	if !lossSeen {
		t.Error("no connection ever lost a packet; loss should be occasional, not absent")
	}
}

func TestConnectionsDiffer(t *testing.T) {
	conns := newTestConnections(t, Options{Connections: 50, Channels: 4, Seed: 11})
	sessions := map[string]string{} // channel -> session
	ids := map[string]bool{}
	roles := map[string]int{}
	for _, c := range conns {
		for _, id := range []string{c.ConnectionID, c.SessionID} {
			if len(id) != IDLen || strings.Trim(id, crockford) != "" {
				t.Fatalf("id %q is not 26 Crockford base32 characters", id)
			}
		}
		if ids[c.ConnectionID] {
			t.Fatalf("connection_id %s used twice", c.ConnectionID)
		}
		ids[c.ConnectionID] = true
		if s, ok := sessions[c.ChannelID]; ok && s != c.SessionID {
			t.Errorf("channel %s has sessions %s and %s; a channel has one", c.ChannelID, s, c.SessionID)
		}
		sessions[c.ChannelID] = c.SessionID
		roles[c.Role]++
	}
	if len(sessions) != 4 {
		t.Errorf("got %d channels, want 4", len(sessions))
	}
	if roles["sendrecv"] == 0 || roles["sendonly"]+roles["recvonly"] == 0 {
		t.Errorf("roles %v: want mostly sendrecv and some one-way", roles)
	}
}

func TestRoleDecidesStats(t *testing.T) {
	tests := []struct {
		role   string
		absent []string
	}{
		{"sendrecv", nil},
		{"sendonly", []string{"inbound-rtp", "remote-outbound-rtp", "media-playout"}},
		{"recvonly", []string{"outbound-rtp", "remote-inbound-rtp", "media-source"}},
	}
	conns := newTestConnections(t, Options{Connections: 60, Channels: 1, Seed: 5})
	for _, tt := range tests {
		t.Run(tt.role, func(t *testing.T) {
			for _, c := range conns {
				if c.Role != tt.role {
					continue
				}
				r := decode(t, c.Report(time.Now()))
				if r.Role != tt.role {
					t.Fatalf("report says role %q, want %q", r.Role, tt.role)
				}
				types, codecs, used := map[string]bool{}, map[string]bool{}, map[string]bool{}
				for _, s := range r.Stats {
					types[s["type"].(string)] = true
					if s["type"] == "codec" {
						codecs[s["id"].(string)] = true
					}
					if id, ok := s["codecId"].(string); ok {
						used[id] = true
					}
				}
				for _, typ := range tt.absent {
					if types[typ] {
						t.Errorf("a %s connection reports %s", tt.role, typ)
					}
				}
				for id := range used {
					if !codecs[id] {
						t.Errorf("codecId %s has no codec element", id)
					}
				}
				for id := range codecs {
					if !used[id] {
						t.Errorf("codec %s is reported but unused", id)
					}
				}
				return
			}
			t.Fatalf("60 connections of seed 5 gave no %s connection", tt.role)
		})
	}
}

func TestSameSeedSameReports(t *testing.T) {
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	a := newTestConnections(t, Options{Connections: 3, Channels: 1, Seed: 9})
	b := newTestConnections(t, Options{Connections: 3, Channels: 1, Seed: 9})
	for i := range a {
		a[i].Report(at)
		b[i].Report(at)
		if x, y := a[i].Report(at.Add(time.Second)), b[i].Report(at.Add(time.Second)); string(x) != string(y) {
			t.Fatalf("connection %d: same seed, different reports", i)
		}
	}
}
