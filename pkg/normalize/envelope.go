package normalize

import (
	"bytes"
	"fmt"
	"slices"
	"time"

	"kohaku/pkg/sora"
)

// The envelope's string fields that rows use, as indexes of envelope.str.
const (
	envLabel = iota
	envVersion
	envNodeName
	envChannelID
	envSessionID
	envClientID
	envConnectionID
	envRole
	envGroupID
	envBundleID
	envStrings
)

// The envelope's boolean fields, as indexes of envelope.flag.
const (
	envMultistream = iota
	envSimulcast
	envSpotlight
	envFlags
)

// envelopeField says where a top-level field of a body goes and whether it must be there.
type envelopeField struct {
	name     string
	str      int // index in envelope.str, or -1
	flag     int // index in envelope.flag, or -1
	required bool
	// lenient fields have a column when they hold a string and are kept in extra when
	// they hold anything else: validation has no rule for them in every message type.
	lenient bool
}

// envelopeFields returns the top-level fields of a body of type typ that have a place in
// the rows, besides type, timestamp and stats (DESIGN.md section 2).
func envelopeFields(typ string) []envelopeField {
	common := []envelopeField{
		{name: "label", str: envLabel, flag: -1, required: true},
		{name: "version", str: envVersion, flag: -1, required: true},
		{name: "node_name", str: envNodeName, flag: -1, required: true},
	}
	if !sora.ConnectionType(typ) {
		return common
	}
	return append(common,
		envelopeField{name: "channel_id", str: envChannelID, flag: -1, required: true},
		envelopeField{name: "session_id", str: envSessionID, flag: -1, required: true},
		envelopeField{name: "client_id", str: envClientID, flag: -1, required: true},
		envelopeField{name: "connection_id", str: envConnectionID, flag: -1, required: true},
		envelopeField{name: "role", str: envRole, flag: -1},
		// The stats webhook of Sora 2025.2 and later has no multistream.
		envelopeField{name: "multistream", str: -1, flag: envMultistream, required: typ == sora.TypeUserAgent},
		envelopeField{name: "simulcast", str: -1, flag: envSimulcast, required: true},
		envelopeField{name: "spotlight", str: -1, flag: envSpotlight, required: true},
		envelopeField{name: "group_id", str: envGroupID, flag: -1, lenient: true},
		envelopeField{name: "bundle_id", str: envBundleID, flag: -1, lenient: true},
	)
}

// envelope is the decoded top level of a body.
type envelope struct {
	time    any // time.Time in UTC, boxed once for every row
	str     [envStrings]any
	flag    [envFlags]bool
	hasFlag [envFlags]bool // the flag was in the body
	stats   int            // where the stats array starts in the body
	extra   memberSet      // the fields without a column, in body order
}

// readEnvelope checks the top-level fields fs of a body of exporterType and decodes them.
// As in any JSON decoding, the last of repeated fields counts. When check is set, the body
// holds something that PostgreSQL cannot store, and a field (other than stats, whose
// elements are checked one by one) that holds it is an error: the envelope is every row's.
func readEnvelope(exporterType string, fs []rawMember, check bool) (*envelope, error) {
	if !sora.KnownType(exporterType) {
		return nil, &DecodeError{Field: "type", Err: fmt.Errorf("%w %q", sora.ErrUnknownType, exporterType)}
	}
	env := &envelope{stats: -1}
	env.extra.reset(fs)
	known := envelopeFields(exporterType)
	seen := make([]bool, len(known))
	var typ, ts *rawMember
	for k := len(fs) - 1; k >= 0; k-- {
		fd := &fs[k]
		if check && string(fd.key) != "stats" {
			if err := envelopeStorable(fd); err != nil {
				return nil, err
			}
		}
		switch string(fd.key) {
		case "type":
			if typ == nil {
				typ = fd
			}
			continue
		case "timestamp":
			if ts == nil {
				ts = fd
			}
			continue
		case "stats":
			if env.stats < 0 {
				if fd.tok != tokArray {
					return nil, decodeErr("stats", "not an array")
				}
				env.stats = fd.pos
			}
			continue
		}
		n := slices.IndexFunc(known, func(e envelopeField) bool { return e.name == string(fd.key) })
		switch {
		case n >= 0 && seen[n]:
		case n >= 0 && known[n].lenient && fd.tok != tokString:
			seen[n] = true
			env.extra.add(k)
		case n >= 0:
			seen[n] = true
			e := known[n]
			if e.str >= 0 {
				if fd.tok != tokString {
					return nil, decodeErr(e.name, "not a string")
				}
				env.str[e.str] = fd.str()
			} else {
				if fd.tok != tokTrue && fd.tok != tokFalse {
					return nil, decodeErr(e.name, "not a boolean")
				}
				env.flag[e.flag] = fd.tok == tokTrue
				env.hasFlag[e.flag] = true
			}
		case !env.extra.has(fd.key):
			env.extra.add(k)
		}
	}
	env.extra.reverse()

	if typ == nil {
		return nil, decodeErr("type", "missing")
	}
	if got := typeString(typ); got != exporterType {
		return nil, decodeErr("type", "%q does not match the exporter type %q", got, exporterType)
	}
	if ts == nil {
		return nil, decodeErr("timestamp", "missing")
	}
	if ts.tok != tokString {
		return nil, decodeErr("timestamp", "not a string")
	}
	t, err := time.Parse(time.RFC3339Nano, ts.str())
	if err != nil {
		return nil, &DecodeError{Field: "timestamp", Err: err}
	}
	// PostgreSQL keeps microseconds, and Sora sends them: a finer time is truncated here,
	// as the binary COPY would, so that the rows say what the database will hold.
	env.time = t.UTC().Truncate(time.Microsecond)
	for n, e := range known {
		if e.required && !seen[n] {
			return nil, decodeErr(e.name, "missing")
		}
	}
	// The strings that are keys of indexes, as stats ids are.
	for _, e := range known {
		switch e.str {
		case envChannelID, envSessionID, envConnectionID, envNodeName:
			if s, ok := env.str[e.str].(string); ok && len(s) > MaxIDBytes {
				return nil, decodeErr(e.name, "%d bytes, more than the %d an index key may have", len(s), MaxIDBytes)
			}
		}
	}
	if env.stats < 0 {
		return nil, decodeErr("stats", "missing")
	}
	return env, nil
}

// envelopeStorable returns a *DecodeError when the top-level field fd holds what
// PostgreSQL cannot store.
func envelopeStorable(fd *rawMember) error {
	if bytes.IndexByte(fd.key, 0) >= 0 {
		return decodeErr("", `a member name holds \u0000, which PostgreSQL text and jsonb cannot store`)
	}
	if _, _, reason := storable(fd.raw, 0); reason != "" {
		return decodeErr(truncate(string(fd.key)), "%s", reason)
	}
	return nil
}

// typeString returns the envelope's type for an error message.
func typeString(fd *rawMember) string {
	if fd.tok == tokString {
		return fd.str()
	}
	return string(fd.raw)
}

// connection returns the sora_connection row of the envelope of a connection's report
// (connection.user-agent or connection.rtc), which came by feed.
func (env *envelope) connection(feed string, surrogates bool) (*Connection, error) {
	str := func(k int) string { s, _ := env.str[k].(string); return s }
	opt := func(k int) *string {
		if s, ok := env.str[k].(string); ok {
			return &s
		}
		return nil
	}
	var multistream *bool
	if env.hasFlag[envMultistream] {
		multistream = &env.flag[envMultistream]
	}
	extra, err := jsonObject(&env.extra, surrogates)
	if err != nil {
		return nil, &DecodeError{Err: err}
	}
	if extra == nil {
		extra = []byte("{}")
	}
	return &Connection{
		ConnectionID: str(envConnectionID),
		ChannelID:    str(envChannelID),
		SessionID:    str(envSessionID),
		ClientID:     str(envClientID),
		Role:         str(envRole),
		Multistream:  multistream,
		Simulcast:    env.flag[envSimulcast],
		Spotlight:    env.flag[envSpotlight],
		Label:        str(envLabel),
		Version:      str(envVersion),
		NodeName:     str(envNodeName),
		GroupID:      opt(envGroupID),
		BundleID:     opt(envBundleID),
		Feed:         feed,
		Time:         env.time.(time.Time),
		Extra:        extra,
	}, nil
}
