package normalize

import "time"

// Tables that are not named after an RTCStats type.
const (
	TableConnection = "sora_connection"
	TableOther      = "rtc_other_stats"
	TableErlangVM   = "sora_node_erlang_vm_memory"
)

// Feeds, the values of sora_connection.feed: which of Sora's two ways of sending stats
// reported a connection.
const (
	FeedExporter = "exporter" // the stats exporter, connection.user-agent on /collector
	FeedWebhook  = "webhook"  // the stats webhook, connection.rtc (Sora 2025.1 and later)
)

// MaxIDBytes is the longest stats id, and the longest channel_id, session_id,
// connection_id and node_name, that Message accepts, in bytes. These values are keys of
// the tables' B-tree indexes, whose entries PostgreSQL limits to about 2,700 bytes ("index
// row size exceeds maximum"); browsers' ids are a few dozen bytes and the receiver refuses
// ids over 255 bytes by default, so only a body from an older receiver or a raised limit
// comes near it. An element with a longer id is rejected (RejectLongID); an envelope with
// a longer one is a *DecodeError.
const MaxIDBytes = 1024

// Kinds of Rejected, short fixed words for metrics and the dead-letter table.
const (
	// RejectNUL: a string or member name of the element holds U+0000, which PostgreSQL's
	// text and jsonb cannot store in any form.
	RejectNUL = "nul"
	// RejectNumber: a number of the element is beyond PostgreSQL's numeric, which jsonb
	// stores numbers as (more than 131072 digits before the point or 16383 after it, or an
	// exponent of 1073741823 or more in size).
	RejectNumber = "number"
	// RejectLongID: the element's id is longer than MaxIDBytes.
	RejectLongID = "long_id"
	// RejectNotObject: the element is not a JSON object.
	RejectNotObject = "not_object"
)

// Rows is one message turned into database rows.
type Rows struct {
	// Connection is the sora_connection row of a connection.user-agent or connection.rtc
	// message, nil for node.erlang-vm. It is upserted, not copied: first and last seen move.
	Connection *Connection
	// Tables maps a table name to the rows for it. The values of each row are in the
	// order of Columns(table) and have Go types that pgx encodes into those columns. The
	// numbers and texts of a message's rows share a few chunks of memory: one kept after
	// its rows keeps its chunk, a few KiB, alive with it.
	Tables map[string][][]any
	// Origins maps a table name to where each of its rows came from: Origins[table][k] is
	// the element of Tables[table][k].
	Origins map[string][]Origin
	// Count is the number of rows in Tables, all tables together.
	Count int
	// Rejected lists, in element order, the stats elements that no row holds because
	// PostgreSQL could not store them: the writer keeps each in the dead-letter table, and
	// stores the rest of the message.
	Rejected []Rejected
}

// Origin locates the stats element that a row was made from.
type Origin struct {
	Index      int // its position in the message's stats array
	Start, End int // its bytes in the body: body[Start:End]
}

// Raw returns the element's JSON as written in body, the body the rows were made from.
func (o Origin) Raw(body []byte) []byte { return body[o.Start:o.End] }

// Rejected is a stats element that cannot be stored, and why.
type Rejected struct {
	Index  int    // its position in the message's stats array
	Raw    []byte // the element as written: a slice of the body
	Kind   string // RejectNUL, RejectNumber, RejectLongID or RejectNotObject
	Reason string // what is wrong with it, for a person
}

// Connection is one row of sora_connection.
type Connection struct {
	ConnectionID string
	ChannelID    string
	SessionID    string
	ClientID     string
	Role         string
	Multistream  *bool // nil when the body has none (the stats webhook of Sora 2025.2 on)
	Simulcast    bool
	Spotlight    bool
	Label        string
	Version      string
	NodeName     string
	GroupID      *string   // nil when the body has no string group_id
	BundleID     *string   // nil when the body has no string bundle_id
	Feed         string    // FeedExporter or FeedWebhook: how Sora sent the report
	Time         time.Time // the message timestamp: first and last seen start here
	Extra        []byte    // JSON object of envelope fields without a column, never nil
}
