package normalize

import "strings"

// column is one column of a table, in COPY order.
type column struct {
	name   string // the SQL name
	member string // the JSON member it holds, "" for the leading columns
	kind   valueKind
}

// layout is the shape of one table that Message fills.
type layout struct {
	name           string
	types          []string // the RTCStatsType values stored here, none for the non-RTC tables
	dictionary     string
	columns        []column
	places         places // JSON member -> index of its typed column, memberSkip or memberExtra
	statsType      int    // index of stats_type, -1 when the table has one type
	statsTimestamp int    // index of stats_timestamp, -1 in the erlang table
	extra          int    // index of extra (of stats in rtc_other_stats)
}

// Indexes of the leading columns of rtc_<type>_stats tables and rtc_other_stats.
const (
	colTime = iota
	colChannelID
	colSessionID
	colConnectionID
	colStatsID
)

// Indexes of the leading columns of sora_node_erlang_vm_memory.
const (
	colErlangTime = iota
	colErlangLabel
	colErlangVersion
	colErlangNodeName
	erlangLeading
)

// catalog holds every table's layout. It is derived once from the constant member lists
// and never modified.
type catalog struct {
	tables []*layout          // stats tables in the specification's order, then other, then erlang
	byName map[string]*layout // table name -> layout
	byType map[string]*layout // RTCStatsType -> its typed table
	other  *layout
	erlang *layout
}

// tables is the catalog that every function of the package reads.
var tables = newCatalog()

func newCatalog() *catalog {
	c := &catalog{byName: map[string]*layout{}, byType: map[string]*layout{}}
	add := func(l *layout) {
		c.tables = append(c.tables, l)
		c.byName[l.name] = l
	}
	for _, t := range statsTables() {
		l := &layout{name: t.name, types: t.types, dictionary: t.dictionary, statsType: -1}
		l.columns = []column{
			{name: "time", kind: kindTime},
			{name: "channel_id", kind: kindText},
			{name: "session_id", kind: kindText},
			{name: "connection_id", kind: kindText},
			{name: "stats_id", kind: kindText},
		}
		if len(t.types) > 1 {
			l.statsType = len(l.columns)
			l.columns = append(l.columns, column{name: "stats_type", member: "type", kind: kindText})
		}
		l.statsTimestamp = len(l.columns)
		l.columns = append(l.columns, column{name: "stats_timestamp", member: "timestamp", kind: kindFloat})
		l.addMembers(t.members)
		add(l)
		for _, typ := range t.types {
			c.byType[typ] = l
		}
	}

	c.other = &layout{name: TableOther, statsType: colStatsID + 1, statsTimestamp: colStatsID + 2, columns: []column{
		{name: "time", kind: kindTime},
		{name: "channel_id", kind: kindText},
		{name: "session_id", kind: kindText},
		{name: "connection_id", kind: kindText},
		{name: "stats_id", kind: kindText},
		{name: "stats_type", kind: kindText},
		{name: "stats_timestamp", kind: kindFloat},
		{name: "stats", kind: kindJSON},
	}}
	c.other.extra = len(c.other.columns) - 1
	add(c.other)

	c.erlang = &layout{name: TableErlangVM, statsType: -1, statsTimestamp: -1, columns: []column{
		{name: "time", kind: kindTime},
		{name: "label", kind: kindText},
		{name: "version", kind: kindText},
		{name: "node_name", kind: kindText},
	}}
	c.erlang.addMembers(erlangVMMembers())
	add(c.erlang)
	return c
}

// addMembers appends a typed column per member, then extra, and fills l.places: the
// members' columns, the stats timestamp's, and type and id, which typedRow skips (but an
// erlang-vm-memory element's id, which no column holds, goes to extra).
func (l *layout) addMembers(ms []member) {
	cols := map[string]int{"type": memberSkip}
	if l.name != TableErlangVM {
		cols["id"] = memberSkip
	}
	if l.statsTimestamp >= 0 {
		cols["timestamp"] = l.statsTimestamp
	}
	for _, m := range ms {
		cols[m.json] = len(l.columns)
		l.columns = append(l.columns, column{name: columnName(m.json), member: m.json, kind: m.kind})
	}
	l.extra = len(l.columns)
	l.columns = append(l.columns, column{name: "extra", kind: kindJSON})
	l.places = newPlaces(cols)
}

// columnName is the snake_case of a camelCase member name: bytesReceived ->
// bytes_received, packetsReceivedWithEct1 -> packets_received_with_ect1.
func columnName(member string) string {
	var sb strings.Builder
	for k, r := range member {
		if r >= 'A' && r <= 'Z' {
			if k > 0 {
				sb.WriteByte('_')
			}
			r += 'a' - 'A'
		}
		sb.WriteRune(r)
	}
	return sb.String()
}

// Columns returns the columns of table in the order of the values in Rows.Tables[table],
// which is the column list to give COPY. It returns nil for a table Message never fills.
func Columns(table string) []string {
	l := tables.byName[table]
	if l == nil {
		return nil
	}
	out := make([]string, len(l.columns))
	for k, c := range l.columns {
		out[k] = c.name
	}
	return out
}

// ColumnTypes returns the PostgreSQL types of Columns(table), in the same order.
func ColumnTypes(table string) []string {
	l := tables.byName[table]
	if l == nil {
		return nil
	}
	out := make([]string, len(l.columns))
	for k, c := range l.columns {
		out[k] = c.kind.sqlType()
	}
	return out
}

// NaturalKey returns the columns of table's natural key, unique in the table: (node_name,
// time) for sora_node_erlang_vm_memory, (connection_id, stats_id, time) for the others. It
// returns nil for a table Message never fills.
func NaturalKey(table string) []string {
	switch l := tables.byName[table]; l {
	case nil:
		return nil
	case tables.erlang:
		return []string{"node_name", "time"}
	}
	return []string{"connection_id", "stats_id", "time"}
}

// StatsTables returns every table that Message may put rows in (all of them but
// sora_connection): the rtc_<type>_stats tables, rtc_other_stats and
// sora_node_erlang_vm_memory.
func StatsTables() []string {
	out := make([]string, len(tables.tables))
	for k, l := range tables.tables {
		out[k] = l.name
	}
	return out
}
