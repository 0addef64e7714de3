// Package normalize turns the request bodies of Sora's stats webhook and stats exporter
// into database rows (DESIGN.md section 4).
//
// Message decodes one body: a connection.rtc or connection.user-agent report becomes a
// sora_connection row
// and one row per RTCStats element in the rtc_<type>_stats table of its type, with a typed
// column per member of the W3C webrtc-stats dictionary and an extra jsonb column for the
// rest; a node.erlang-vm report becomes a sora_node_erlang_vm_memory row. Storage is
// lossless: a value that does not fit its column exactly stays, as written, in extra, so
// that columns and extra give back each element (the tests rebuild every element so).
//
// The member lists (tables.go) are the single source of the tables: Columns and
// ColumnTypes give the COPY column lists, and schema/0001_tables.sql is generated from
// them (go test ./pkg/normalize -run TestSchemaSQLUpToDate -update).
package normalize
