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
// Times keep the microseconds that Sora sends and PostgreSQL stores; finer digits are
// truncated.
//
// What PostgreSQL cannot store is decided here, element by element, not discovered by the
// database for a whole batch: an element that holds U+0000 (in any string or member name),
// a number beyond numeric (which jsonb stores numbers as), or an id longer than
// MaxIDBytes, or that is not an object, is set apart in Rows.Rejected, whole and as
// written, and the writer keeps it in the dead-letter table while the report's other
// elements are stored. Such elements are isolated rather than stored in an escaped form:
// text and jsonb cannot hold U+0000 at all, and a number beyond numeric could only be
// kept as a string, so any escaped form would be a Kohaku convention that every reader of
// the tables must know, and that a browser's own strings or members could imitate (an app
// sets data-channel labels), unless a name were reserved in every element. Browsers send
// neither (their numbers are doubles, which numeric holds), the dead letter keeps the
// element byte for byte, and its neighbours lose nothing. A body whose envelope holds one
// is a *DecodeError: the envelope is part of every row.
//
// Work is linear in the size of the body, however its members are spread: an element or
// envelope with many unknown members costs no more per member than a small one.
//
// The member lists (tables.go) are the single source of the tables: Columns and
// ColumnTypes give the COPY column lists, and the schema follows them. Columns are in COPY
// order, which is not the tables' column order: a member given a column after the first
// release (such as totalEncodedBytesTarget) is listed where its dictionary has it, while
// the table gets the column at its end. A member added here is kept in extra by every
// database until its column exists: go generate ./schema writes the migration that adds
// it, and a test of package schema fails until it is written (schema/doc.go).
package normalize
