package sim

import (
	"encoding/json"
	"math"
	"strconv"
	"time"
)

// encode writes the connection.user-agent report of the current state at now, with the
// envelope members in the order Sora writes them and each stats element's members in the
// captured order.
func (c *Connection) encode(now time.Time) []byte {
	t := c.t
	b := make([]byte, 0, 16<<10)
	b = append(b, `{"type":"connection.user-agent","id":`...)
	b = appendString(b, newID(now, c.rng))
	b = append(b, `,"timestamp":`...)
	b = appendString(b, now.UTC().Format(timestampLayout))
	for _, f := range [...]struct {
		name string
		raw  []byte
	}{
		{"label", t.label}, {"version", t.version}, {"node_name", t.nodeName},
		{"multistream", t.multistream}, {"simulcast", t.simulcast}, {"spotlight", t.spotlight},
	} {
		b = append(b, `,"`...)
		b = append(b, f.name...)
		b = append(b, `":`...)
		b = append(b, f.raw...)
	}
	for _, f := range [...]struct{ name, v string }{
		{"role", c.Role}, {"channel_id", c.ChannelID}, {"client_id", c.ClientID},
		// Sora's bundle_id is the connection_id unless connections share a bundle.
		{"bundle_id", c.ConnectionID}, {"session_id", c.SessionID}, {"connection_id", c.ConnectionID},
	} {
		b = append(b, `,"`...)
		b = append(b, f.name...)
		b = append(b, `":`...)
		b = appendString(b, f.v)
	}
	return c.appendStats(b, now)
}

// webhookVersion is the Sora version that webhook reports name: Sora 2025.2 and later
// leave multistream out, as these reports do.
const webhookVersion = `"2025.2.0"`

// encodeWebhook writes the connection.rtc report of the current state at now, with the
// envelope members in the order of Sora's stats webhook.
func (c *Connection) encodeWebhook(now time.Time) []byte {
	t := c.t
	b := make([]byte, 0, 16<<10)
	b = append(b, `{"type":"connection.rtc","id":`...)
	b = appendString(b, newID(now, c.rng)) // the webhook request's own id
	b = append(b, `,"timestamp":`...)
	b = appendString(b, now.UTC().Format(timestampLayout))
	b = append(b, `,"label":`...)
	b = append(b, t.label...)
	b = append(b, `,"version":`+webhookVersion+`,"node_name":`...)
	b = append(b, t.nodeName...)
	for _, f := range [...]struct{ name, v string }{
		{"channel_id", c.ChannelID}, {"session_id", c.SessionID}, {"client_id", c.ClientID},
		{"bundle_id", c.ConnectionID}, {"connection_id", c.ConnectionID}, {"group_id", c.GroupID},
		{"role", c.Role},
	} {
		b = append(b, `,"`...)
		b = append(b, f.name...)
		b = append(b, `":`...)
		b = appendString(b, f.v)
	}
	b = append(b, `,"simulcast":`...)
	b = append(b, t.simulcast...)
	b = append(b, `,"spotlight":`...)
	b = append(b, t.spotlight...)
	return c.appendStats(b, now)
}

// appendStats writes the stats member of the current state at now and closes the report.
func (c *Connection) appendStats(b []byte, now time.Time) []byte {
	b = append(b, `,"stats":[`...)
	nowMs := float64(now.UnixNano()) / 1e6
	for i, ei := range c.elements {
		if i > 0 {
			b = append(b, ',')
		}
		b = c.appendObject(b, c.t.elements[ei].members, nowMs)
	}
	return append(b, "]}"...)
}

// appendObject writes the members ms with their current values.
func (c *Connection) appendObject(b []byte, ms []member, nowMs float64) []byte {
	b = append(b, '{')
	for i := range ms {
		m := &ms[i]
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, m.name)
		b = append(b, ':')
		switch m.kind {
		case record:
			b = c.appendObject(b, m.members, nowMs)
		case counter:
			v := c.values[m.slot]
			if m.integer {
				v = math.Floor(v) // the state grows by fractions; whole units are reported
			}
			b = appendNumber(b, v, m.integer)
		case gauge:
			b = appendNumber(b, c.values[m.slot], m.integer)
		case clock:
			// Keep the member's distance to the report time, as captured: RTCP-based
			// elements lag behind, last-packet times slightly precede the report.
			b = appendNumber(b, nowMs-(c.t.at-m.value), m.integer)
		default:
			if v, ok := c.overrides[m]; ok {
				b = append(b, v...) // an impairment's state
				break
			}
			b = append(b, m.raw...)
		}
	}
	return append(b, '}')
}

// appendNumber writes v as a JSON number: a whole number when integer, otherwise the
// shortest decimal that reads back as v, with an exponent only for very small or large
// values (as encoding/json does).
func appendNumber(b []byte, v float64, integer bool) []byte {
	if integer {
		return strconv.AppendInt(b, int64(math.Round(v)), 10)
	}
	format := byte('f')
	if a := math.Abs(v); a != 0 && (a < 1e-6 || a >= 1e21) {
		format = 'e'
	}
	return strconv.AppendFloat(b, v, format, -1, 64)
}

// appendString writes s as a JSON string.
func appendString(b []byte, s string) []byte {
	q, _ := json.Marshal(s) // a string always marshals
	return append(b, q...)
}
