package sim

import (
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"kohaku/pkg/sora"
	"kohaku/testsupport/fixtures"
)

func fixtureBodies(t *testing.T) (reports [][]byte, node []byte) {
	t.Helper()
	all, err := fixtures.All()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range all {
		if strings.HasPrefix(f.Name, "chromium-pc1-") {
			reports = append(reports, f.Body)
		}
		if f.ExporterType == sora.TypeErlangVM {
			node = f.Body
		}
	}
	return reports, node
}

func TestNewTemplateRejects(t *testing.T) {
	reports, node := fixtureBodies(t)
	tests := []struct {
		name    string
		reports [][]byte
		node    []byte
	}{
		{"no report", nil, node},
		{"a report that is not JSON", [][]byte{[]byte("{")}, node},
		{"a report without label", [][]byte{[]byte(`{"timestamp":"2026-01-01T00:00:00Z","version":"1","node_name":"n","multistream":true,"simulcast":false,"spotlight":false,"stats":[]}`)}, node},
		{"no node report", reports, nil},
		{"a node report without memory", reports, []byte(`{"type":"node.erlang-vm","stats":[]}`)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := NewTemplate(tt.reports, tt.node); err == nil {
				t.Error("NewTemplate succeeded, want an error")
			}
		})
	}
}

func TestTemplateClassifiesMembers(t *testing.T) {
	tmpl, err := FixtureTemplate()
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]map[string]kind{ // element type -> member -> kind
		"outbound-rtp": {"bytesSent": counter, "framesEncoded": counter, "frameWidth": gauge, "ssrc": constant,
			"timestamp": clock, "qualityLimitationDurations": record, "nackCount": counter},
		"inbound-rtp":        {"packetsReceived": counter, "packetsLost": counter, "jitter": gauge, "lastPacketReceivedTimestamp": clock},
		"remote-inbound-rtp": {"roundTripTime": gauge, "totalRoundTripTime": counter, "fractionLost": gauge},
		"candidate-pair":     {"priority": constant, "availableOutgoingBitrate": gauge, "bytesSent": counter},
	}
	// Some element of the type must have the member as that kind: the capture has an idle
	// candidate pair whose counters never moved, rightly constant.
	seen := map[string]bool{}
	for _, e := range tmpl.elements {
		for name, k := range want[e.typ] {
			if find(e.members, name).kind == k {
				seen[e.typ+"."+name] = true
			}
		}
	}
	for typ, members := range want {
		for name, k := range members {
			if !seen[typ+"."+name] {
				t.Errorf("no %s has %s of kind %d", typ, name, k)
			}
		}
	}
}

func TestOneReportTemplateKeepsCounters(t *testing.T) {
	reports, node := fixtureBodies(t)
	tmpl, err := NewTemplate(reports[len(reports)-1:], node)
	if err != nil {
		t.Fatal(err)
	}
	conns, err := NewConnections(tmpl, Options{Connections: 1, Channels: 1}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	conns[0].Report(now)
	if err := sora.Validate(sora.TypeUserAgent, conns[0].Report(now.Add(time.Second))); err != nil {
		t.Fatalf("report of a one-report template: %v", err)
	}
}

func TestNewIDSortsByTime(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	at := time.Date(2026, 11, 29, 6, 0, 0, 0, time.UTC)
	prev := ""
	for i := range 100 {
		id := newID(at.Add(time.Duration(i)*time.Millisecond), rng)
		if len(id) != IDLen || strings.Trim(id, crockford) != "" {
			t.Fatalf("id %q is not %d Crockford base32 characters", id, IDLen)
		}
		if id[:10] <= prev {
			t.Fatalf("id %q does not sort after the previous millisecond's %q", id, prev)
		}
		prev = id[:10]
	}
}
