package sim

import (
	"encoding/json"
	"slices"
	"time"
)

// shape is what a connection's plan does to one step, from the report at offset from to
// the report at offset to (seconds since the connection's origin): how long each kind of
// counter grew during the step, what the impairments add, and which gauges and states hold
// at the report's instant, to. Splitting the step at every window boundary makes the
// figures exact however the windows fall between reports.
type shape struct {
	plan Impairments
	at   float64 // the report's offset

	media     float64 // seconds of the step in which media flowed (not stopped)
	frames    float64 // seconds in which received video was decoded (neither stopped nor frozen)
	none      float64 // seconds in which the sent video was limited by nothing
	cpu       float64 // seconds in which it was limited by CPU
	bandwidth float64 // seconds in which it was limited by bandwidth
	frozen    float64 // seconds in which the received video was frozen

	// Sums over the parts of the step in which media flowed of their length times a factor
	// of the impairment in force: p/(1-p) for loss (lost per received packet), p for
	// remoteloss (lost per sent packet) and conceal (concealed per received sample).
	lossW, remoteW, concealW float64

	freezes, conceals int // freeze and conceal windows that began in the step
}

// newShape returns what p does to the step (from, to].
func newShape(p Impairments, from, to float64) *shape {
	s := &shape{plan: p, at: to}
	cuts := []float64{from, to}
	for _, i := range p {
		start, end := i.Start.Seconds(), i.endSeconds()
		for _, x := range [...]float64{start, end} {
			if from < x && x < to {
				cuts = append(cuts, x)
			}
		}
		if from <= start && start < to { // the first step holding part of the window
			switch i.Kind {
			case ImpairFreeze:
				s.freezes++
			case ImpairConceal:
				s.conceals++
			}
		}
	}
	slices.Sort(cuts)
	for n := 1; n < len(cuts); n++ {
		length := cuts[n] - cuts[n-1]
		if length <= 0 {
			continue
		}
		mid := cuts[n-1] + length/2 // no window boundary lies inside the part
		stopped := p.active(ImpairStop, mid) != nil
		frozen := p.active(ImpairFreeze, mid) != nil
		if !stopped {
			s.media += length
			if i := p.active(ImpairLoss, mid); i != nil {
				q := i.Percent / 100
				s.lossW += length * q / (1 - q)
			}
			if i := p.active(ImpairRemoteLoss, mid); i != nil {
				s.remoteW += length * i.Percent / 100
			}
			if i := p.active(ImpairConceal, mid); i != nil {
				s.concealW += length * i.Percent / 100
			}
		}
		if !stopped && !frozen {
			s.frames += length
		}
		if frozen {
			s.frozen += length
		}
		switch {
		case p.active(ImpairCPU, mid) != nil:
			s.cpu += length
		case p.active(ImpairBandwidth, mid) != nil:
			s.bandwidth += length
		default:
			s.none += length
		}
	}
	return s
}

// now reports whether an impairment of kind k holds at the report's instant.
func (s *shape) now(k ImpairmentKind) *Impairment { return s.plan.active(k, s.at) }

// growth returns how many seconds of the step a counter m of element e grew for: the
// whole step unless the plan stops the media, freezes the video or limits its quality.
func (s *shape) growth(e *element, m *member, dt float64) float64 {
	switch {
	case s == nil:
		return dt
	case m.name == "none" && e.typ == "outbound-rtp": // qualityLimitationDurations
		return s.none
	case e.typ == "inbound-rtp" && e.media == "video" && followsFrames(m.name):
		return s.frames
	case e.typ == "inbound-rtp" || e.typ == "outbound-rtp",
		e.typ == "remote-outbound-rtp" && followsBitrate(m.name):
		return s.media
	}
	return dt
}

// impairedLoss returns the packets that the plan loses in the step of element e, which
// received or sent packets in it.
func (s *shape) impairedLoss(e *element, packets float64) float64 {
	if s == nil || s.media <= 0 {
		return 0
	}
	switch e.typ {
	case "inbound-rtp":
		return packets * s.lossW / s.media
	case "remote-inbound-rtp":
		return packets * s.remoteW / s.media
	}
	return 0
}

// impair applies the rest of s to the state once every element has advanced: the counters
// that impairments add to, and the gauges and states that they set at the report's
// instant.
func (c *Connection) impair(s *shape) {
	clear(c.overrides)
	rtt, jitter := s.now(ImpairRTT), s.now(ImpairJitter)
	stopped := s.now(ImpairStop) != nil
	for _, ei := range c.elements {
		e := &c.t.elements[ei]
		ms := e.members
		switch e.typ {
		case "inbound-rtp":
			if jitter != nil {
				c.setGauge(find(ms, "jitter"), jitter.Delay.Seconds())
			}
			if e.media != "video" {
				c.addCounter(find(ms, "concealedSamples"), s.concealW*find(ms, "totalSamplesReceived").rate)
				c.addCounter(find(ms, "concealmentEvents"), float64(s.conceals))
				break
			}
			c.addCounter(find(ms, "freezeCount"), float64(s.freezes))
			c.addCounter(find(ms, "totalFreezesDuration"), s.frozen)
			c.addCounter(find(ms, "pliCount"), float64(s.freezes)+s.frozen) // one at once, one a second after
			if stopped || s.now(ImpairFreeze) != nil {
				c.setGauge(find(ms, "framesPerSecond"), 0)
			}
		case "outbound-rtp":
			if stopped {
				c.setGauge(find(ms, "framesPerSecond"), 0)
			}
			q := find(ms, "qualityLimitationDurations")
			c.addCounter(find(q.members, "cpu"), s.cpu)
			c.addCounter(find(q.members, "bandwidth"), s.bandwidth)
			switch {
			case s.now(ImpairCPU) != nil:
				c.override(find(ms, "qualityLimitationReason"), "cpu")
			case s.now(ImpairBandwidth) != nil:
				c.override(find(ms, "qualityLimitationReason"), "bandwidth")
			}
		case "candidate-pair", "remote-inbound-rtp", "remote-outbound-rtp":
			if rtt != nil {
				c.setGauge(find(ms, "currentRoundTripTime"), rtt.Delay.Seconds())
				c.setGauge(find(ms, "roundTripTime"), rtt.Delay.Seconds())
			}
		case "transport":
			if i := s.now(ImpairICE); i != nil {
				c.override(find(ms, "iceState"), i.State)
			}
			if i := s.now(ImpairDTLS); i != nil {
				c.override(find(ms, "dtlsState"), i.State)
			}
		case "local-candidate":
			if !c.paired[e.id] {
				break
			}
			if s.now(ImpairRelay) != nil {
				c.override(find(ms, "candidateType"), "relay")
			}
			if s.now(ImpairTCP) != nil {
				c.override(find(ms, "protocol"), "tcp")
			}
		}
	}
}

// addCounter adds v to the counter m, if the element has it.
func (c *Connection) addCounter(m *member, v float64) {
	if m.kind == counter && v != 0 {
		c.values[m.slot] += v
	}
}

// setGauge sets the gauge m to v, if the element has it.
func (c *Connection) setGauge(m *member, v float64) {
	if m.kind == gauge {
		c.values[m.slot] = v
	}
}

// override makes the next report write the string v for the constant m, if the element
// has it.
func (c *Connection) override(m *member, v string) {
	if m.kind == constant && m.raw != nil {
		c.overrides[m] = appendString(nil, v)
	}
}

// pairedCandidates returns the ids of the local candidates of t's candidate pairs.
func (t *Template) pairedCandidates() map[string]bool {
	ids := map[string]bool{}
	for _, e := range t.elements {
		if e.typ != "candidate-pair" {
			continue
		}
		var id string
		if json.Unmarshal(find(e.members, "localCandidateId").raw, &id) == nil {
			ids[id] = true
		}
	}
	return ids
}

// Silent reports whether the connection's plan holds back its report at now, in a gap;
// Sender sends no report then. Like Report and Webhook, a first call sets the origin.
func (c *Connection) Silent(now time.Time) bool {
	return c.plan.silent(c.offset(now))
}

// Impairments returns the plan that the connection follows, nil for a clean connection.
// The plan must not be modified.
func (c *Connection) Impairments() Impairments { return c.plan }

// Origin returns the time that the offsets of the connection's plan count from: the time
// of its first Report, Webhook or Silent call, zero before that.
func (c *Connection) Origin() time.Time { return c.origin }

// offset returns the seconds from the connection's origin to now, making now the origin
// on the first call.
func (c *Connection) offset(now time.Time) float64 {
	if c.origin.IsZero() {
		c.origin = now
	}
	return now.Sub(c.origin).Seconds()
}
