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

// Rows is one message turned into database rows.
type Rows struct {
	// Connection is the sora_connection row of a connection.user-agent or connection.rtc
	// message, nil for node.erlang-vm. It is upserted, not copied: first and last seen move.
	Connection *Connection
	// Tables maps a table name to the rows for it. The values of each row are in the
	// order of Columns(table) and have Go types that pgx encodes into those columns.
	Tables map[string][][]any
	// Count is the number of rows in Tables, all tables together.
	Count int
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
