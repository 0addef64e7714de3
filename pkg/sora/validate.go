package sora

import (
	"strconv"
	"time"
	"unicode/utf8"
	"unsafe"

	"kohaku/pkg/jsonscan"
)

// Limits of DESIGN.md section 2.
const (
	maxIDBytes = 255 // channel_id, client_id; and the webhook's id, group_id, bundle_id
	ulidLen    = 26  // session_id, connection_id: Sora's ids are 26 characters
)

// memberSet is a set of the envelope members that have a rule, one bit a member: each
// constant below is the set of one member.
type memberSet uint32

const (
	fType memberSet = 1 << iota
	fID
	fTimestamp
	fLabel
	fVersion
	fNodeName
	fMultistream
	fSimulcast
	fSpotlight
	fRole
	fChannelID
	fClientID
	fSessionID
	fConnectionID
	fStats
	fGroupID
	fBundleID
)

// memberNames lists the members with a rule; the order is the one in which a missing
// member is reported.
var memberNames = [...]struct {
	f    memberSet
	name string
}{
	{fType, "type"}, {fID, "id"}, {fTimestamp, "timestamp"}, {fLabel, "label"}, {fVersion, "version"},
	{fNodeName, "node_name"}, {fMultistream, "multistream"}, {fSimulcast, "simulcast"},
	{fSpotlight, "spotlight"}, {fRole, "role"}, {fChannelID, "channel_id"}, {fClientID, "client_id"},
	{fSessionID, "session_id"}, {fConnectionID, "connection_id"}, {fStats, "stats"},
	{fGroupID, "group_id"}, {fBundleID, "bundle_id"},
}

// rules says which members of a message type must be there and which are checked only
// when present; a member in neither set is accepted whatever it holds.
type rules struct {
	required, optional memberSet
}

const (
	nodeRequired      = fType | fTimestamp | fLabel | fVersion | fNodeName | fStats
	userAgentRequired = nodeRequired | fMultistream | fSimulcast | fSpotlight | fRole |
		fChannelID | fClientID | fSessionID | fConnectionID
)

// rulesOf returns the rules of a message type, false for an unknown type. The stats
// webhook's body is the exporter's connection.user-agent but for multistream, absent from
// Sora 2025.2 on, and three ids: rejecting a real Sora body is worse than storing an odd
// one, so they are checked only as far as storing them needs.
func rulesOf(typ string) (rules, bool) {
	switch typ {
	case TypeUserAgent:
		return rules{required: userAgentRequired, optional: fID}, true
	case TypeErlangVM:
		return rules{required: nodeRequired, optional: fID}, true
	case TypeConnectionRTC:
		return rules{required: userAgentRequired &^ fMultistream, optional: fID | fMultistream | fGroupID | fBundleID}, true
	}
	return rules{}, false
}

func lookupMember(key string) (memberSet, bool) {
	for _, n := range memberNames {
		if n.name == key {
			return n.f, true
		}
	}
	return 0, false
}

// Validate checks that body is a well-formed message of type typ (an exporter or a
// webhook type) under the rules of DESIGN.md section 2. It returns nil, ErrUnknownType, or
// a *FieldError naming the first problem. Members it has no rule for are accepted whatever
// they hold, because newer Sora versions add fields. Validate reads body once and does not
// allocate on success.
func Validate(typ string, body []byte) error { return validate(typ, body, false) }

// validate is Validate; slow never takes the fast jsonscan.Walker, for the tests.
func validate(typ string, body []byte, slow bool) error {
	r, ok := rulesOf(typ)
	if !ok {
		return ErrUnknownType
	}
	v := validator{scanner: scanner{data: body, slow: slow}, typ: typ}
	v.envelope(r)
	if v.err != nil {
		return v.err
	}
	return nil
}

type validator struct {
	scanner
	typ  string
	seen memberSet
}

func (v *validator) envelope(r rules) {
	if v.peek() == 0 {
		v.fail("", "empty body")
		return
	}
	if !v.consume('{') {
		v.fail("", "body must be a JSON object")
		return
	}
	v.members("", func(key string, _ []byte, _ bool) bool {
		f, ok := lookupMember(key)
		if !ok || (r.required|r.optional)&f == 0 {
			v.skip(key, 1)
			return true
		}
		v.seen |= f
		v.member(f, key)
		return true
	})
	if v.err != nil {
		return
	}
	if v.peek() != 0 {
		v.fail("", "invalid JSON: data after the object")
		return
	}
	for _, n := range memberNames {
		if r.required&n.f != 0 && v.seen&n.f == 0 {
			v.fail(n.name, "required")
			return
		}
	}
}

// member checks the value of one envelope member with a rule.
func (v *validator) member(f memberSet, name string) {
	switch f {
	case fMultistream, fSimulcast, fSpotlight:
		v.expect(name, kindBool)
	case fStats:
		v.stats()
	case fID, fGroupID, fBundleID:
		v.optionalID(f, name)
	default:
		v.stringMember(f, name)
	}
}

// optionalID checks an id that may be absent: a string or null. The stats webhook's ids are
// also bounded like channel_id, since Sora lets applications choose bundle_id; the
// exporter's id was never checked beyond its type.
func (v *validator) optionalID(f memberSet, name string) {
	k, raw, escaped := v.skip(name, 1)
	if v.err != nil || k == kindNull {
		return
	}
	if k != kindString {
		v.wrongType(name, k, kindString)
		return
	}
	if v.typ != TypeConnectionRTC {
		return
	}
	var buf [64]byte
	s := raw
	if escaped {
		s = jsonscan.Unescape(buf[:0], raw)
	}
	if len(s) == 0 || len(s) > maxIDBytes {
		v.fail(name, "must be 1 to 255 bytes")
	}
}

func (v *validator) expect(name string, want kind) {
	if k, _, _ := v.skip(name, 1); k != want && v.err == nil {
		v.wrongType(name, k, want)
	}
}

func (v *validator) wrongType(name string, got, want kind) {
	if v.err == nil {
		v.fail(name, "must be "+want.String()+", not "+got.String())
	}
}

func (v *validator) stringMember(f memberSet, name string) {
	k, raw, escaped := v.skip(name, 1)
	if v.err != nil {
		return
	}
	if k != kindString {
		v.wrongType(name, k, kindString)
		return
	}
	var buf [64]byte
	s := raw
	if escaped {
		s = jsonscan.Unescape(buf[:0], raw)
	}
	if msg := checkString(f, s, v.typ); msg != "" {
		v.fail(name, msg)
	}
}

// checkString applies the rule of a string member to its decoded value and returns what is
// wrong with it, or "".
func checkString(f memberSet, s []byte, typ string) string {
	switch f {
	case fType:
		if string(s) != typ {
			if WebhookType(typ) {
				return "must match the " + HeaderWebhookType + " header (" + typ + ")"
			}
			return "must repeat the " + HeaderExporterType + " header (" + typ + ")"
		}
	case fTimestamp:
		if _, err := time.Parse(time.RFC3339Nano, unsafeString(s)); err != nil {
			return "must be an RFC 3339 time"
		}
	case fRole:
		switch string(s) {
		case "sendrecv", "sendonly", "recvonly":
		default:
			return "must be sendrecv, sendonly or recvonly"
		}
	case fChannelID, fClientID:
		if len(s) == 0 || len(s) > maxIDBytes {
			return "must be 1 to 255 bytes"
		}
	case fSessionID, fConnectionID:
		if utf8.RuneCount(s) != ulidLen {
			return "must be exactly 26 characters"
		}
	case fLabel, fVersion, fNodeName:
		// any string
	}
	return ""
}

// stats checks that stats is an array of objects and, for the Erlang VM report, that the
// memory figures are unsigned integers.
func (v *validator) stats() {
	if !v.consume('[') {
		k, _, _ := v.skip("stats", 1)
		v.wrongType("stats", k, kindArray)
		return
	}
	v.elements("stats", func(i int) bool {
		if v.peek() != '{' {
			k, _, _ := v.skip("stats", 2)
			v.wrongType(indexName(i), k, kindObject)
			return false
		}
		if v.typ == TypeErlangVM {
			v.pos++
			v.erlangMemory(i)
		} else {
			v.skip("stats", 2)
		}
		return v.err == nil
	})
}

// erlangMemoryFields are the members of an erlang-vm-memory element.
var erlangMemoryFields = [...]string{"total", "processes", "processes_used", "system", "atom", "atom_used", "binary", "code", "ets"}

func (v *validator) erlangMemory(i int) {
	var isMemory bool
	var seen uint16
	var bad string // first memory figure that is not an unsigned integer
	v.members("stats", func(key string, _ []byte, _ bool) bool {
		if key == "type" {
			_, raw, _ := v.skip("stats", 3)
			isMemory = string(raw) == "erlang-vm-memory"
			return true
		}
		for j, name := range erlangMemoryFields {
			if key == name {
				seen |= 1 << j
				start := jsonscan.SkipSpace(v.data, v.pos)
				if k, _, _ := v.skip("stats", 3); k != kindNumber || !unsignedInt(v.data[start:v.pos]) {
					if bad == "" {
						bad = name
					}
				}
				return true
			}
		}
		v.skip("stats", 3)
		return true
	})
	if v.err != nil || !isMemory {
		return
	}
	if bad != "" {
		v.fail(indexName(i)+"."+bad, "must be an unsigned integer")
		return
	}
	for j, name := range erlangMemoryFields {
		if seen&(1<<j) == 0 {
			v.fail(indexName(i)+"."+name, "required")
			return
		}
	}
}

// unsignedInt reports whether a JSON number is a whole number from 0 to 2^63-1, the range
// of the bigint column it is stored in.
func unsignedInt(n []byte) bool {
	const max = "9223372036854775807"
	if len(n) == 0 || len(n) > len(max) {
		return false
	}
	for _, c := range n {
		if c < '0' || c > '9' {
			return false
		}
	}
	if len(n) > 1 && n[0] == '0' {
		return false
	}
	return len(n) < len(max) || string(n) <= max
}

// indexName names a stats element in an error; it allocates, but only on failure.
func indexName(i int) string {
	return "stats[" + strconv.Itoa(i) + "]"
}

// unsafeString views b as a string without copying, for comparisons that do not keep it.
func unsafeString(b []byte) string {
	return unsafe.String(unsafe.SliceData(b), len(b))
}
