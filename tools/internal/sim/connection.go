package sim

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"time"
)

// timestampLayout is how Sora writes the envelope's timestamp: RFC 3339, UTC, microseconds.
const timestampLayout = "2006-01-02T15:04:05.000000Z"

// Options says which connections to simulate.
type Options struct {
	Connections int    // how many connections
	Channels    int    // connections are spread round-robin over this many channels
	Seed        uint64 // the same seed gives the same connections and reports

	// Steady gives every connection a good, steady network: no packet loss, no bursts of
	// congestion, no changes of frame size, a round-trip time under 50 ms and a jitter
	// under 10 ms, so that the only trouble in the reports is what Impair plans.
	Steady bool
	// Impair is the plan of trouble that the first Impaired connections follow (all of
	// them when Impaired is 0); those connections are sendrecv, so that they have every
	// stats element that an impairment shapes. The plan must not change afterwards.
	Impair   Impairments
	Impaired int
}

// Connection is one simulated client connection of a Sora channel. Its Report method
// advances the call and encodes it; a Connection is not safe for concurrent use.
type Connection struct {
	ChannelID, SessionID, ClientID, ConnectionID string
	GroupID                                      string // the stats webhook's group_id, one per channel
	Role                                         string // sendrecv, sendonly or recvonly

	t        *Template
	elements []int     // indexes of the template elements that this role reports
	values   []float64 // current value of every counter and gauge, by slot
	rng      *rand.Rand
	last     time.Time // when the previous report was made; zero before the first
	origin   time.Time // what the plan's offsets count from; zero before the first report

	// The plan, nil for a clean connection, and what it does to the current step.
	plan      Impairments
	shape     *shape
	overrides map[*member][]byte // constants written differently in the current report
	paired    map[string]bool    // ids of the local candidates of candidate pairs
	steady    bool               // Options.Steady

	// What makes this connection differ from the template and from the others.
	bitrate    float64 // multiplies the rate of byte and packet counters
	resolution int     // index in resolutions
	rtt        float64 // seconds
	jitter     float64 // multiplies the captured jitter
	loss       float64 // fraction of packets lost in a quiet period

	// The network during the current step.
	rttNow, jitterNow, lossNow float64
	sent                       []float64 // packets sent or received during the step, by element
}

// resolutions are the factors applied to the captured frame size; a connection starts on
// one and sometimes moves to a neighbour, as a browser adapting to bandwidth or CPU does.
var resolutions = [...]float64{0.5, 1, 1.5, 2}

// NewConnections returns o.Connections connections derived from t. Each has its own
// connection_id, client_id, bitrate, frame size, round-trip time and loss; connections of a
// channel share its session_id. Most are sendrecv, about one in ten sendonly and one in
// ten recvonly, reporting only the stats that their direction has. The first o.Impaired
// connections (all when it is 0) follow the plan o.Impair.
func NewConnections(t *Template, o Options, start time.Time) ([]*Connection, error) {
	if o.Connections < 1 {
		return nil, fmt.Errorf("sim: connections must be at least 1, got %d", o.Connections)
	}
	if o.Channels < 1 {
		return nil, fmt.Errorf("sim: channels must be at least 1, got %d", o.Channels)
	}
	if t == nil {
		return nil, errors.New("sim: no template")
	}
	if o.Impaired < 0 || o.Impaired > o.Connections {
		return nil, fmt.Errorf("sim: impaired connections must be between 0 (all) and %d, got %d", o.Connections, o.Impaired)
	}
	if err := o.Impair.Validate(); err != nil {
		return nil, err
	}
	impaired := o.Impaired
	if impaired == 0 || len(o.Impair) == 0 {
		impaired = o.Connections
	}
	var paired map[string]bool
	if len(o.Impair) > 0 {
		paired = t.pairedCandidates()
	}
	rng := rand.New(rand.NewPCG(o.Seed, 0x6368616e))
	sessions := make([]string, min(o.Channels, o.Connections))
	for i := range sessions {
		sessions[i] = newID(start, rng)
	}
	conns := make([]*Connection, o.Connections)
	for i := range conns {
		c := &Connection{
			ChannelID:    "sora-sim-" + strconv.Itoa(i%len(sessions)+1),
			GroupID:      "sora-sim-group-" + strconv.Itoa(i%len(sessions)+1),
			SessionID:    sessions[i%len(sessions)],
			ClientID:     fmt.Sprintf("sora-sim-client-%05d", i+1),
			ConnectionID: newID(start, rng),
			t:            t,
			rng:          rand.New(rand.NewPCG(o.Seed, uint64(i)+1)),
			values:       make([]float64, t.slots),
			steady:       o.Steady,
		}
		if len(o.Impair) > 0 && i < impaired {
			c.plan, c.overrides, c.paired = o.Impair, map[*member][]byte{}, paired
		}
		c.personalize()
		conns[i] = c
	}
	return conns, nil
}

// personalize draws the connection's role and network, and sets its starting state.
func (c *Connection) personalize() {
	r := c.rng
	switch p := r.Float64(); {
	case p < 0.1:
		c.Role = "sendonly"
	case p < 0.2:
		c.Role = "recvonly"
	default:
		c.Role = "sendrecv"
	}
	if c.plan != nil {
		c.Role = "sendrecv"
	}
	c.bitrate = 0.5 + 1.5*r.Float64()
	c.resolution = r.IntN(len(resolutions))
	c.rtt = 0.005 + 0.145*r.Float64()*r.Float64() // most calls are near, a few far
	c.jitter = 1 + 19*r.Float64()*r.Float64()
	if r.Float64() < 0.4 {
		c.loss = 0.02 * r.Float64()
	}
	if c.steady { // the same draws, squeezed into a good network
		c.rtt = 0.005 + (c.rtt-0.005)*0.035/0.145 // at most 40 ms
		c.jitter = 1 + (c.jitter-1)*2/19
		c.loss = 0
	}
	c.elements = c.t.elementsFor(c.Role)
	for _, ei := range c.elements {
		setCaptured(c.values, c.t.elements[ei].members)
	}
	c.sent = make([]float64, len(c.t.elements))
}

// setCaptured copies the captured values of counters and gauges into the state.
func setCaptured(values []float64, ms []member) {
	for i := range ms {
		if m := &ms[i]; m.kind == record {
			setCaptured(values, m.members)
		} else if m.slot >= 0 {
			values[m.slot] = m.value
		}
	}
}

// elementsFor returns the indexes of the elements that a connection of role reports: a
// sendonly connection receives no media and a recvonly one sends none, and neither reports
// the codecs that it does not use.
func (t *Template) elementsFor(role string) []int {
	drop := map[string]bool{}
	switch role {
	case "sendonly":
		drop = map[string]bool{"inbound-rtp": true, "remote-outbound-rtp": true, "media-playout": true}
	case "recvonly":
		drop = map[string]bool{"outbound-rtp": true, "remote-inbound-rtp": true, "media-source": true}
	}
	used := map[string]bool{}
	for _, e := range t.elements {
		if !drop[e.typ] && e.codecID != "" {
			used[e.codecID] = true
		}
	}
	var out []int
	for i, e := range t.elements {
		if drop[e.typ] || e.typ == "codec" && !used[e.id] {
			continue
		}
		out = append(out, i)
	}
	return out
}

// Report advances the call to now and returns the body of the connection.user-agent report
// that Sora's stats exporter would send at now. Counters never decrease from one report to
// the next.
func (c *Connection) Report(now time.Time) []byte {
	c.advanceTo(now)
	return c.encode(now)
}

// Webhook advances the call to now and returns the body of the connection.rtc report that
// Sora's stats webhook would send at now, as Sora 2025.2 does: with group_id and bundle_id,
// without multistream. Report and Webhook advance the same call.
func (c *Connection) Webhook(now time.Time) []byte {
	c.advanceTo(now)
	return c.encodeWebhook(now)
}

// advanceTo advances the state to now; a time before the last report's is a step of 0.
func (c *Connection) advanceTo(now time.Time) {
	to := c.offset(now)
	dt := 0.0
	if !c.last.IsZero() {
		dt = max(now.Sub(c.last).Seconds(), 0)
	}
	if now.After(c.last) {
		c.last = now
	}
	c.shape = nil
	if c.plan != nil {
		c.shape = newShape(c.plan, to-dt, to)
	}
	c.step(dt)
}

// step advances the state by dt seconds.
func (c *Connection) step(dt float64) {
	r := c.rng
	c.rttNow = c.rtt * (0.85 + 0.3*r.Float64())
	c.jitterNow = c.jitter * (0.7 + 0.6*r.Float64())
	c.lossNow = c.loss * r.Float64() * 2
	if r.Float64() < 0.03 && !c.steady { // a burst of congestion: loss, queueing delay and jitter
		c.lossNow += 0.05 + 0.1*r.Float64()
		c.rttNow *= 2
		c.jitterNow *= 3
	}
	if r.Float64() < 0.01 && !c.steady {
		c.resolution = max(0, min(len(resolutions)-1, c.resolution+2*r.IntN(2)-1))
	}
	if c.shape != nil {
		if i := c.shape.now(ImpairRTT); i != nil {
			c.rttNow = i.Delay.Seconds() // before advance: totalRoundTripTime follows it
		}
	}
	for _, ei := range c.elements {
		e := &c.t.elements[ei]
		before := c.value(e.packets)
		noise := 0.85 + 0.3*r.Float64() // shared by the element's bytes and packets
		c.advance(e, e.members, dt, noise)
		c.sent[ei] = c.value(e.packets) - before
	}
	for _, ei := range c.elements {
		c.lose(ei)
	}
	if c.shape != nil {
		c.impair(c.shape)
	}
}

// advance moves the counters and gauges of ms by dt seconds.
func (c *Connection) advance(e *element, ms []member, dt, noise float64) {
	for i := range ms {
		m := &ms[i]
		switch m.kind {
		case record:
			c.advance(e, m.members, dt, noise)
		case counter:
			inc := m.rate * c.shape.growth(e, m, dt)
			if followsBitrate(m.name) {
				inc *= c.bitrate * noise
			}
			if m.name == "totalRoundTripTime" && e.rtt > 0 {
				inc *= c.rttNow / e.rtt // a sum of round-trip times grows with them
			}
			c.values[m.slot] += inc
		case gauge:
			c.values[m.slot] = c.gauge(m)
		}
	}
}

// gauge returns the current value of an instantaneous member.
func (c *Connection) gauge(m *member) float64 {
	r, v := c.rng, m.value
	if v == 0 && gauges[m.name] != followLoss {
		return 0 // not measured yet (no RTCP receiver report, no audio level...)
	}
	switch gauges[m.name] {
	case followRTT:
		return c.rttNow * (0.95 + 0.1*r.Float64())
	case followJitter:
		return v * c.jitterNow
	case followBitrate:
		return v * c.bitrate * (0.9 + 0.2*r.Float64())
	case followResolution:
		return 2 * math.Round(v*resolutions[c.resolution]/2) // even, as encoders need
	case followLoss:
		return c.values[m.slot] // set by lose
	case fps:
		return max(v+float64(r.IntN(3)-1), 1)
	case level:
		return min(v*(0.3+1.4*r.Float64()), 1)
	default:
		return v * (0.97 + 0.06*r.Float64())
	}
}

// lose counts the packets of this step that the network lost: packetsLost (and nackCount
// for video) of inbound-rtp from the packets it received, and of remote-inbound-rtp from
// the packets that its outbound-rtp sent, with fractionLost the lost share of the step.
func (c *Connection) lose(ei int) {
	e := &c.t.elements[ei]
	var sent float64
	switch {
	case e.typ == "inbound-rtp":
		sent = c.sent[ei]
	case e.typ == "remote-inbound-rtp" && e.local >= 0:
		sent = c.sent[e.local]
	default:
		return
	}
	lost := min(math.Floor(sent*c.lossNow+c.rng.Float64()), sent) // rounds at random, keeping the mean
	lost += c.shape.impairedLoss(e, sent)
	if e.lost >= 0 {
		c.values[e.lost] += lost
	}
	if e.nack >= 0 {
		c.values[e.nack] += lost
	}
	if e.typ == "remote-inbound-rtp" && c.t.elements[e.local].nack >= 0 {
		c.values[c.t.elements[e.local].nack] += lost // the sender receives the NACKs
	}
	if e.fraction >= 0 {
		c.values[e.fraction] = 0
		if sent > 0 {
			c.values[e.fraction] = lost / sent
		}
	}
}

// value returns the value in slot, or 0 for no slot.
func (c *Connection) value(slot int) float64 {
	if slot < 0 {
		return 0
	}
	return c.values[slot]
}
