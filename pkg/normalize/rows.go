package normalize

import "time"

// Tables that are not named after an RTCStats type.
const (
	TableConnection = "sora_connection"
	TableOther      = "rtc_other_stats"
	TableErlangVM   = "sora_node_erlang_vm_memory"
)

// Rows is one message turned into database rows.
type Rows struct {
	// Connection is the sora_connection row of a connection.user-agent message, nil for
	// other exporter types. It is upserted, not copied: first and last seen move.
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
	Multistream  bool
	Simulcast    bool
	Spotlight    bool
	Label        string
	Version      string
	NodeName     string
	Time         time.Time // the message timestamp: first and last seen start here
	Extra        []byte    // JSON object of envelope fields without a column, never nil
}
