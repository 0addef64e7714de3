package sim

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"
)

// kind says how a stats member evolves from one report to the next.
type kind uint8

const (
	constant kind = iota // written as captured: ids, ssrc, priority, strings, booleans
	counter              // cumulative: never decreases, grows at the captured rate
	gauge                // instantaneous: wanders around a per-connection value
	clock                // milliseconds since the epoch: moves with the report's time
	record               // an object of members (qualityLimitationDurations)
)

// member is one member of a captured stats element.
type member struct {
	name    string
	raw     json.RawMessage // the captured JSON text, written back for constants
	kind    kind
	integer bool    // captured as a JSON integer, so written without a fraction
	value   float64 // captured value in the last report
	rate    float64 // counters: growth per second between the first and the last report
	slot    int     // counters and gauges: index of the current value in a connection's state
	members []member
}

// element is one captured RTCStats dictionary, with the slots of the members that packet
// loss and round-trip time drive (-1 when the element has no such member).
type element struct {
	typ, id  string
	members  []member
	localID  string // remote-inbound-rtp: the outbound-rtp it reports on
	local    int    // index of that outbound-rtp in the template, or -1
	codecID  string
	media    string  // the kind member of RTP elements: audio or video
	packets  int     // packetsReceived (inbound) or packetsSent (outbound)
	lost     int     // packetsLost
	nack     int     // nackCount
	fraction int     // fractionLost
	rtt      float64 // captured roundTripTime or currentRoundTripTime, 0 if none
}

// Template is a real browser capture that simulated connections start from and evolve
// like. It is read-only once built and may be shared by any number of connections.
type Template struct {
	label, version, nodeName          json.RawMessage
	multistream, simulcast, spotlight json.RawMessage
	elements                          []element
	at                                float64 // the last report's time in ms since the epoch
	slots                             int     // counters and gauges: a connection's state size
	node                              nodeTemplate
}

// envelope is the part of a connection.user-agent report that a template keeps.
type envelope struct {
	Timestamp   string            `json:"timestamp"`
	Label       json.RawMessage   `json:"label"`
	Version     json.RawMessage   `json:"version"`
	NodeName    json.RawMessage   `json:"node_name"`
	Multistream json.RawMessage   `json:"multistream"`
	Simulcast   json.RawMessage   `json:"simulcast"`
	Spotlight   json.RawMessage   `json:"spotlight"`
	Stats       []json.RawMessage `json:"stats"`
}

// NewTemplate builds a template from successive connection.user-agent reports of one
// connection, oldest first, and one node.erlang-vm report. The last report is the state
// that simulated connections start from; the growth from the first report to the last
// gives each counter its rate, so at least two reports make counters move.
func NewTemplate(reports [][]byte, erlangVM []byte) (*Template, error) {
	if len(reports) == 0 {
		return nil, errors.New("sim: template: no connection.user-agent report")
	}
	var first, last envelope
	if err := json.Unmarshal(reports[0], &first); err != nil {
		return nil, fmt.Errorf("sim: template: decode first report: %w", err)
	}
	if err := json.Unmarshal(reports[len(reports)-1], &last); err != nil {
		return nil, fmt.Errorf("sim: template: decode last report: %w", err)
	}
	t := &Template{
		label: last.Label, version: last.Version, nodeName: last.NodeName,
		multistream: last.Multistream, simulcast: last.Simulcast, spotlight: last.Spotlight,
	}
	for _, f := range [...]struct {
		name string
		v    json.RawMessage
	}{
		{"label", t.label}, {"version", t.version}, {"node_name", t.nodeName},
		{"multistream", t.multistream}, {"simulcast", t.simulcast}, {"spotlight", t.spotlight},
	} {
		if len(f.v) == 0 {
			return nil, fmt.Errorf("sim: template: last report has no %s", f.name)
		}
	}
	span, err := reportSpan(first.Timestamp, last.Timestamp)
	if err != nil {
		return nil, err
	}
	earlier := map[string][]member{}
	for i, raw := range first.Stats {
		e, err := parseElement(raw)
		if err != nil {
			return nil, fmt.Errorf("sim: template: first report stats[%d]: %w", i, err)
		}
		earlier[e.id] = e.members
	}
	for i, raw := range last.Stats {
		e, err := parseElement(raw)
		if err != nil {
			return nil, fmt.Errorf("sim: template: last report stats[%d]: %w", i, err)
		}
		dt := span
		if prev, ok := earlier[e.id]; ok {
			// Elements built from RTCP reports carry their own, older, timestamp: their
			// counters grew over the time between those, not between the envelopes.
			if d := (find(e.members, "timestamp").value - find(prev, "timestamp").value) / 1000; d > 0 {
				dt = d
			}
			learnRates(e.members, prev, dt)
		}
		t.slots = classify(e.members, t.slots)
		e.index()
		if ts := find(e.members, "timestamp").value; ts > t.at {
			t.at = ts
		}
		t.elements = append(t.elements, e)
	}
	for i := range t.elements {
		t.elements[i].local = -1
		for j := range t.elements {
			if t.elements[i].localID != "" && t.elements[j].id == t.elements[i].localID {
				t.elements[i].local = j
			}
		}
	}
	if t.at == 0 {
		return nil, errors.New("sim: template: no stats element has a timestamp")
	}
	if t.node, err = parseNode(erlangVM); err != nil {
		return nil, err
	}
	return t, nil
}

// reportSpan returns the seconds between two envelope timestamps.
func reportSpan(first, last string) (float64, error) {
	a, err := time.Parse(time.RFC3339Nano, first)
	if err != nil {
		return 0, fmt.Errorf("sim: template: first report timestamp: %w", err)
	}
	b, err := time.Parse(time.RFC3339Nano, last)
	if err != nil {
		return 0, fmt.Errorf("sim: template: last report timestamp: %w", err)
	}
	return b.Sub(a).Seconds(), nil
}

// parseElement reads one stats element, keeping its members in the captured order.
func parseElement(raw []byte) (element, error) {
	members, err := parseObject(raw)
	if err != nil {
		return element{}, err
	}
	e := element{members: members}
	if err := json.Unmarshal(find(members, "type").raw, &e.typ); err != nil {
		return element{}, fmt.Errorf("type: %w", err)
	}
	if err := json.Unmarshal(find(members, "id").raw, &e.id); err != nil {
		return element{}, fmt.Errorf("id: %w", err)
	}
	return e, nil
}

// parseObject reads a JSON object's members in order; objects nested in it become records.
func parseObject(raw []byte) ([]member, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, fmt.Errorf("want an object: %v", err)
	}
	var out []member
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, fmt.Errorf("member name: %w", err)
		}
		m := member{name: tok.(string), slot: -1}
		if err := dec.Decode(&m.raw); err != nil {
			return nil, fmt.Errorf("%s: %w", m.name, err)
		}
		switch c := m.raw[0]; {
		case c == '{':
			if m.members, err = parseObject(m.raw); err != nil {
				return nil, fmt.Errorf("%s: %w", m.name, err)
			}
			m.kind = record
		case c == '-' || c >= '0' && c <= '9':
			if m.value, err = strconv.ParseFloat(string(m.raw), 64); err != nil {
				return nil, fmt.Errorf("%s: %w", m.name, err)
			}
			m.integer = !bytes.ContainsAny(m.raw, ".eE")
		}
		out = append(out, m)
	}
	return out, nil
}

// find returns the member called name, or a zero member.
func find(ms []member, name string) *member {
	for i := range ms {
		if ms[i].name == name {
			return &ms[i]
		}
	}
	return &member{slot: -1}
}

// learnRates sets the rate of every numeric member that grew since the earlier capture.
func learnRates(ms, earlier []member, dt float64) {
	for i := range ms {
		m := &ms[i]
		prev := find(earlier, m.name)
		switch {
		case m.kind == record:
			learnRates(m.members, prev.members, dt)
		case prev.raw != nil && m.value > prev.value && dt > 0:
			m.rate = (m.value - prev.value) / dt
		}
	}
}

// classify gives every member its kind, and counters and gauges a slot numbered from next;
// it returns the next free slot.
func classify(ms []member, next int) int {
	for i := range ms {
		m := &ms[i]
		if m.kind == record {
			next = classify(m.members, next)
			continue
		}
		if m.raw[0] != '-' && (m.raw[0] < '0' || m.raw[0] > '9') {
			continue // strings, booleans, arrays, null
		}
		switch {
		case isClock(m.name):
			m.kind = clock
		case gauges[m.name] != 0:
			m.kind = gauge
			switch gauges[m.name] {
			case followRTT, followJitter, followLoss, level:
				m.integer = false // a captured 0 must not make a fraction whole
			}
		case m.rate > 0 || drivenCounters[m.name] != 0:
			m.kind = counter
			if drivenCounters[m.name] == seconds {
				m.integer = false
			}
		}
		if m.kind == counter || m.kind == gauge {
			m.slot = next
			next++
		}
	}
	return next
}

// index finds the members that loss and round-trip time drive.
func (e *element) index() {
	e.packets = find(e.members, "packetsReceived").slot
	if e.typ == "outbound-rtp" {
		e.packets = find(e.members, "packetsSent").slot
	}
	e.lost = find(e.members, "packetsLost").slot
	e.nack = find(e.members, "nackCount").slot
	e.fraction = find(e.members, "fractionLost").slot
	for _, name := range [...]string{"roundTripTime", "currentRoundTripTime"} {
		if m := find(e.members, name); m.kind == gauge && m.value > 0 {
			e.rtt = m.value
		}
	}
	_ = json.Unmarshal(find(e.members, "localId").raw, &e.localID)
	_ = json.Unmarshal(find(e.members, "codecId").raw, &e.codecID)
	_ = json.Unmarshal(find(e.members, "kind").raw, &e.media)
}
