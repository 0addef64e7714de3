package sora

import (
	"bytes"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
	"unsafe"

	"kohaku/pkg/jsonscan"
)

// Limits of DESIGN.md section 2 on the envelope's ids; the others are in Limits.
const (
	maxIDBytes = 255 // channel_id, client_id
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

// Validate checks body under the default Limits, as Limits.Validate does.
func Validate(typ string, body []byte) error { return Limits{}.Validate(typ, body) }

// Validate checks that body is a well-formed message of type typ (an exporter or a
// webhook type) under the rules of DESIGN.md section 2 and within l. It returns nil,
// ErrUnknownType, a *LimitError when the body exceeds l, or a *FieldError naming the
// first problem. Members it has no rule for are accepted whatever they hold, because newer
// Sora versions add fields, but the envelope's values must be what PostgreSQL can store
// (no U+0000, numbers within numeric), since they are every row's; a stats element's need
// not be, since the writer sets such an element apart and stores the others. Every rule
// applies to decoded strings and member names, as normalization reads them, so that no
// escape changes the verdict. Validate reads the stats once and does not allocate on
// success.
func (l Limits) Validate(typ string, body []byte) error { return l.validate(typ, body, false) }

// validate is Validate; slow never takes the fast paths (jsonscan.Walker, quickElement),
// for the tests.
func (l Limits) validate(typ string, body []byte, slow bool) error {
	r, ok := rulesOf(typ)
	if !ok {
		return ErrUnknownType
	}
	v := validator{scanner: scanner{data: body, slow: slow}, typ: typ, lim: l.withDefaults()}
	v.envelope(r)
	if v.err != nil {
		return v.err
	}
	return nil
}

type validator struct {
	scanner
	typ  string
	lim  Limits // with its defaults
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
	n := 0
	v.members("", func(key string, _ []byte, _ bool) bool {
		if n++; n > v.lim.MaxMembers {
			v.failLimit(tooManyMembers("", v.lim.MaxMembers))
			return false
		}
		if strings.IndexByte(key, 0) >= 0 {
			v.fail("", "a top-level member name holds \\u0000, which PostgreSQL cannot store")
			return false
		}
		start := v.pos
		if f, ok := lookupMember(key); ok && (r.required|r.optional)&f != 0 {
			v.seen |= f
			v.member(f, key)
		} else {
			v.skip(key, 1)
		}
		if v.err == nil && key != "stats" {
			v.storable(key, start)
		}
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

// storable refuses the value of the envelope member name, which starts at data[start]
// and was found well formed, when PostgreSQL could not store it: a string or member name
// that holds U+0000, or a number beyond numeric. The writer sets a stats element with such
// a value apart and stores the others; the envelope is every row's, so it must be refused
// here.
func (v *validator) storable(name string, start int) {
	w := jsonscan.Walker{MaxDepth: maxDepth, Number: storableNumber, ShortNumber: maxPlainNumber}
	_, strs, ok := w.Value(v.data, start)
	switch {
	case !ok:
		v.fail(name, "holds a number beyond what PostgreSQL numeric can store")
	case strs&jsonscan.NULEscape != 0:
		v.fail(name, "holds \\u0000, which PostgreSQL cannot store")
	}
}

// maxPlainNumber is the length up to which any number without an exponent is storable:
// numeric holds 131072 digits before the point and 16383 after it.
const maxPlainNumber = 16383

// storableNumber reports whether the JSON number n fits PostgreSQL's numeric, or
// conservatively so: it may refuse some that fit, but only far beyond anything that Sora
// sends (the envelope holds no numbers today), in exchange for a simple bound. With an
// exponent of at most 1000 in size and at most 1000 characters, a number has at most 2000
// digits before the point and 2000 after it.
func storableNumber(n []byte) bool {
	k := bytes.IndexAny(n, "eE")
	if k < 0 {
		return len(n) <= maxPlainNumber
	}
	if len(n) > 1000 {
		return false
	}
	e, err := strconv.Atoi(string(n[k+1:]))
	return err == nil && e >= -1000 && e <= 1000
}

// member checks the value of one envelope member with a rule.
func (v *validator) member(f memberSet, name string) {
	switch f {
	case fMultistream, fSimulcast, fSpotlight:
		v.expect(name, kindBool)
	case fStats:
		v.stats()
	case fID, fGroupID, fBundleID:
		v.optionalID(name)
	default:
		v.stringMember(f, name)
	}
}

// optionalID checks an id that may be absent: a string or null, of at most MaxIDBytes.
// The stats webhook's ids must not be empty either, since Sora always sends them.
func (v *validator) optionalID(name string) {
	k, raw, escaped := v.skip(name, 1)
	if v.err != nil || k == kindNull {
		return
	}
	if k != kindString {
		v.wrongType(name, k, kindString)
		return
	}
	switch max := v.lim.MaxIDBytes; {
	case v.typ == TypeConnectionRTC && (len(raw) == 0 || tooLong(raw, escaped, max)):
		v.fail(name, "must be 1 to "+strconv.Itoa(max)+" bytes")
	case tooLong(raw, escaped, max):
		v.fail(name, "must be at most "+strconv.Itoa(max)+" bytes")
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
	if msg := checkString(f, s, v.typ, v.lim); msg != "" {
		v.fail(name, msg)
	}
}

// checkString applies the rule of a string member to its decoded value and returns what is
// wrong with it, or "".
func checkString(f memberSet, s []byte, typ string, lim Limits) string {
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
	case fNodeName:
		// The stats ids of a node's elements other than its memory are made of it.
		if len(s) > lim.MaxIDBytes {
			return "must be at most " + strconv.Itoa(lim.MaxIDBytes) + " bytes"
		}
	case fLabel, fVersion:
		// any string
	}
	return ""
}

// stats checks that stats is an array of at most MaxElements objects, each within the
// limits, and, for the Erlang VM report, that it holds an erlang-vm-memory element and
// that the memory figures are unsigned integers.
func (v *validator) stats() {
	if !v.consume('[') {
		k, _, _ := v.skip("stats", 1)
		v.wrongType("stats", k, kindArray)
		return
	}
	var memory bool // an erlang-vm-memory element was seen
	v.elements("stats", func(i int) bool {
		if i == v.lim.MaxElements {
			v.failLimit(tooManyElements(v.lim.MaxElements))
			return false
		}
		if v.peek() != '{' {
			k, _, _ := v.skip("stats", 2)
			v.wrongType(indexName(i), k, kindObject)
			return false
		}
		v.pos++
		if v.typ == TypeErlangVM {
			memory = v.erlangMemory(i) || memory
		} else {
			v.element(i)
		}
		return v.err == nil
	})
	// Without it the report would store nothing: the writer makes its row of the first.
	if v.err == nil && v.typ == TypeErlangVM && !memory {
		v.fail("stats", "must hold an "+erlangVMMemory+" element")
	}
}

// element checks the members of the RTCStats element whose '{' was consumed: at most
// MaxMembers of them, and an id and type, when strings, of at most MaxIDBytes. The
// common case takes quickElement; anything else is scanned member by member, which words
// the problem.
func (v *validator) element(i int) {
	if !v.slow && v.err == nil {
		if end, ok := v.quickElement(); ok {
			v.pos = end
			return
		}
	}
	n := 0
	v.members("stats", func(key string, _ []byte, _ bool) bool {
		if n++; n > v.lim.MaxMembers {
			v.failLimit(tooManyMembers(indexName(i), v.lim.MaxMembers))
			return false
		}
		k, raw, escaped := v.skip("stats", 3)
		if v.err == nil && k == kindString && (key == "id" || key == "type") {
			v.elementID(i, key, raw, escaped)
		}
		return true
	})
}

// quickElement is element for an element without problems or escaped member names, in
// one loop over its members that leaves their values to jsonscan: it returns the index
// after the element's '}', or false when element must go over it again. It accepts
// nothing that element refuses: an id or type longer than MaxIDBytes before decoding
// sends it there too, since only decoding tells.
func (v *validator) quickElement() (int, bool) {
	d, lim := v.data, v.lim
	w := jsonscan.Walker{MaxDepth: maxDepth - 3} // the values of an element's members are at depth 3
	p := jsonscan.SkipSpace(d, v.pos)
	if p < len(d) && d[p] == '}' {
		return p + 1, true
	}
	for n := 1; n <= lim.MaxMembers; n++ {
		if p >= len(d) || d[p] != '"' {
			return 0, false
		}
		// Most members are read at once; the others token by token.
		kEnd, end, ok := jsonscan.Member(d, p)
		value := kEnd + 1
		if !ok {
			kEnd, value, end, ok = quickMember(d, p, &w)
		}
		if !ok || d[value] == '"' && end-value-2 > lim.MaxIDBytes && isIDKey(d[p+1:kEnd-1]) {
			return 0, false
		}
		p = jsonscan.SkipSpace(d, end)
		if p >= len(d) {
			return 0, false
		}
		switch d[p] {
		case '}':
			return p + 1, true
		case ',':
			p = jsonscan.SkipSpace(d, p+1)
		default:
			return 0, false
		}
	}
	return 0, false // one member too many
}

// quickMember reads the member of a stats element that starts at d[p], a quote, token by
// token, for quickElement: it returns the index after the key's closing quote, where the
// value starts and the index after it, or false when the member has a problem or an
// escaped name.
func quickMember(d []byte, p int, w *jsonscan.Walker) (keyEnd, value, end int, ok bool) {
	keyEnd, kf, fault := jsonscan.String(d, p)
	if fault != jsonscan.NoFault || kf&jsonscan.Escaped != 0 {
		return 0, 0, 0, false
	}
	q := jsonscan.SkipSpace(d, keyEnd)
	if q >= len(d) || d[q] != ':' {
		return 0, 0, 0, false
	}
	q = jsonscan.SkipSpace(d, q+1)
	if q >= len(d) {
		return 0, 0, 0, false
	}
	ok = true
	switch c := d[q]; {
	case c == '"':
		end, _, fault = jsonscan.String(d, q)
		ok = fault == jsonscan.NoFault
	case c == '{' || c == '[':
		end, _, ok = w.Value(d, q)
	case c == '-' || (c >= '0' && c <= '9'):
		// Scalars without the Walker, whose setup costs more than a number.
		end, _, ok = jsonscan.Number(d, q)
	case c == 't' && jsonscan.Literal(d, q, "true"), c == 'n' && jsonscan.Literal(d, q, "null"):
		end = q + 4
	case c == 'f' && jsonscan.Literal(d, q, "false"):
		end = q + 5
	default:
		ok = false
	}
	return keyEnd, q, end, ok
}

// isIDKey reports whether key, a member name as written, is one whose string value an
// element's id or type limit applies to.
func isIDKey(key []byte) bool { return string(key) == "id" || string(key) == "type" }

// elementID checks the string value of a stats element's id or type member.
func (v *validator) elementID(i int, key string, raw []byte, escaped bool) {
	if tooLong(raw, escaped, v.lim.MaxIDBytes) {
		v.fail(indexName(i)+"."+key, "must be at most "+strconv.Itoa(v.lim.MaxIDBytes)+" bytes")
	}
}

// erlangVMMemory is the type of the element that a node.erlang-vm report is about.
const erlangVMMemory = "erlang-vm-memory"

// erlangMemoryFields are the members of an erlang-vm-memory element.
var erlangMemoryFields = [...]string{"total", "processes", "processes_used", "system", "atom", "atom_used", "binary", "code", "ets"}

// erlangMemory checks the element of a node.erlang-vm report whose '{' was consumed, as
// element does, and when its last type is erlang-vm-memory (the one normalization reads),
// its memory figures; it reports whether it is such an element.
func (v *validator) erlangMemory(i int) bool {
	var isMemory bool
	var seen uint16
	var bad string // first memory figure that is not an unsigned integer
	n := 0
	v.members("stats", func(key string, _ []byte, _ bool) bool {
		if n++; n > v.lim.MaxMembers {
			v.failLimit(tooManyMembers(indexName(i), v.lim.MaxMembers))
			return false
		}
		if key == "type" || key == "id" {
			k, raw, escaped := v.skip("stats", 3)
			if v.err == nil && k == kindString {
				v.elementID(i, key, raw, escaped)
			}
			if key == "type" {
				isMemory = k == kindString && textIs(raw, escaped, erlangVMMemory)
			}
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
		return false
	}
	if bad != "" {
		v.fail(indexName(i)+"."+bad, "must be an unsigned integer")
		return true
	}
	for j, name := range erlangMemoryFields {
		if seen&(1<<j) == 0 {
			v.fail(indexName(i)+"."+name, "required")
			return true
		}
	}
	return true
}

// tooLong reports whether the text of a string, its raw contents decoded, is longer than
// max bytes. It decodes only a string longer than max as written, since decoding never
// lengthens one (an escape is longer than the UTF-8 it stands for), and allocates only
// when the text is over 256 bytes.
func tooLong(raw []byte, escaped bool, max int) bool {
	if len(raw) <= max {
		return false
	}
	if !escaped {
		return true
	}
	var buf [256]byte
	return len(jsonscan.Unescape(buf[:0], raw)) > max
}

// textIs reports whether the raw contents of a string decode to want, without allocating
// for a want of up to 21 bytes.
func textIs(raw []byte, escaped bool, want string) bool {
	if !escaped {
		return string(raw) == want
	}
	// Every byte of the text takes at most 6 bytes to write (\u0041): a longer string
	// cannot decode to want.
	if len(raw) > 6*len(want) {
		return false
	}
	var buf [128]byte
	return string(jsonscan.Unescape(buf[:0], raw)) == want
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
