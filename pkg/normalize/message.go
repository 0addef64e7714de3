package normalize

import (
	"strconv"

	"kohaku/pkg/jsonscan"
	"kohaku/pkg/sora"
)

// Message turns one request body of the given exporter or webhook type (DESIGN.md section
// 2) into rows. Every row's time is the envelope's timestamp, in UTC, truncated to the
// microsecond that PostgreSQL keeps (Sora sends microseconds).
//
// A connection.user-agent body, or the stats webhook's connection.rtc, gives
// Rows.Connection and one row per stats element: in the
// rtc_<type>_stats table of its type, with a typed column per W3C member and the other
// members in extra, or whole in rtc_other_stats when its type has no table, when it has no
// string type or id, or when its id repeats one already used in that table (the natural
// key (connection_id, stats_id, time) must stay unique; such an element gets the stats_id
// "stats[<index>]"). A node.erlang-vm body gives one sora_node_erlang_vm_memory row for its
// first "erlang-vm-memory" element that can be stored; any other element goes whole to
// rtc_other_stats with connection_id "" and stats_id "<node_name>/stats[<index>]".
//
// Nothing is lost: a member whose value does not fit its column exactly (null, a string
// for a number, a fraction or a value beyond int64 for an integer, a number that a float64
// does not hold exactly) is kept as written in extra, which is NULL when empty, so that
// the row gives the element back.
//
// An element that PostgreSQL could not store in any form, one that holds U+0000 or a
// number beyond numeric, whose id is longer than MaxIDBytes, or that is not an object,
// gets no row: it is listed in Rows.Rejected, whole, and the other elements are stored.
//
// Every error is a *DecodeError: the body can never become rows.
//
// Message allocates its working memory afresh; a Normalizer reuses it from one body to
// the next.
func Message(exporterType string, body []byte) (*Rows, error) {
	var n Normalizer
	return n.Message(exporterType, body)
}

// A Normalizer turns bodies into rows as Message does, keeping the working memory that
// is not part of the rows (the members of the element at hand, the ids seen) for the
// next body: a third of the bytes that normalizing a browser's report allocates, which
// the writer's garbage collector would otherwise reclaim (BenchmarkMessage). The zero
// value is ready to use. A Normalizer is not safe for concurrent use; the Rows it returns
// share nothing with it and stay valid after the next call.
type Normalizer struct {
	b builder
}

// Message is the package's Message, reusing n's working memory.
func (n *Normalizer) Message(exporterType string, body []byte) (*Rows, error) {
	var facts bodyFacts
	if err := checkBody(body, &facts); err != nil {
		return nil, &DecodeError{Err: err}
	}
	sc := &scanner{d: body, facts: &facts}
	p := jsonscan.SkipSpace(body, 0)
	if tokenAt(body, p) != tokObject {
		return nil, decodeErr("", "body is not a JSON object")
	}
	fs, _ := sc.object(p, nil)
	env, err := readEnvelope(exporterType, fs, facts.unstorable())
	if err != nil {
		return nil, err
	}
	b := &n.b
	b.renew(sc, &facts, env.time)
	defer b.release()
	switch exporterType {
	case sora.TypeUserAgent, sora.TypeConnectionRTC:
		feed := FeedExporter
		if sora.WebhookType(exporterType) {
			feed = FeedWebhook
		}
		b.rows.Connection, err = env.connection(feed, facts.surrogates)
		if err != nil {
			return nil, err
		}
		b.channelID, b.sessionID, b.connectionID = env.str[envChannelID], env.str[envSessionID], env.str[envConnectionID]
		err = b.elements(env.stats, b.userAgentElement)
	case sora.TypeErlangVM:
		b.label, b.version, b.nodeName = env.str[envLabel], env.str[envVersion], env.str[envNodeName]
		b.connectionID = any("") // no connection, but the natural key needs a value
		err = b.elements(env.stats, b.erlangElement)
	}
	if err != nil {
		return nil, err
	}
	b.group()
	return b.rows, nil
}

// statsKey is the natural key of a row within one message: its table and stats_id.
type statsKey struct {
	table *layout
	id    string
}

// builder turns the stats elements of one message into rows.
type builder struct {
	sc         *scanner
	surrogates bool // raw JSON must be normalized before jsonb takes it (see checkBody)
	check      bool // the body holds what PostgreSQL cannot store: check each element
	rows       *Rows
	seen       map[statsKey]struct{}

	// The leading values, boxed once and shared by every row.
	time, channelID, sessionID, connectionID any
	label, version, nodeName                 any
	haveErlang                               bool // the erlang row was made

	at   Origin // the element at hand
	slab []any  // where newRow carves rows from
	vals values // the values of the rows

	// Working memory, emptied by release and kept by renew for the next message: none of
	// it ends in the rows.
	made   []madeRow            // the rows so far, in element order
	fields []rawMember          // the members of the element at hand
	done   []bool               // per column: a later member of the same name was already taken
	extra  memberSet            // the members without a column
	counts map[*layout]rowCount // per table: its rows and where they go (see group)
}

// renew readies b for the message of sc, whose rows all have time t, keeping the working
// memory that release emptied. Browsers' reports hold a row per 400 to 500 bytes (a Chromium
// capture of 12 KB, 27 rows): made has room for them at once.
func (b *builder) renew(sc *scanner, facts *bodyFacts, t any) {
	made := b.made[:0]
	if want := len(sc.d)/512 + 8; cap(made) < want {
		made = make([]madeRow, 0, want)
	}
	*b = builder{
		sc:         sc,
		surrogates: facts.surrogates,
		check:      facts.unstorable(),
		rows:       &Rows{},
		time:       t,
		seen:       b.seen,
		vals:       values{size: len(sc.d)},
		made:       made,
		fields:     b.fields[:0],
		done:       b.done,
		extra:      b.extra,
		counts:     b.counts,
	}
}

// release empties the working memory of the message just made, so that it keeps nothing
// of that message alive, neither its body nor its rows: the writer's collector keeps a
// Normalizer for as long as it pulls.
func (b *builder) release() {
	clear(b.made)
	b.made = b.made[:0]
	if cap(b.fields) > maxScratchMembers {
		b.fields = nil
	} else {
		clear(b.fields[:cap(b.fields)])
	}
	b.extra.reset(nil)
	b.seen, b.counts = scratchMap(b.seen), scratchMap(b.counts)
	b.sc, b.rows, b.slab, b.vals = nil, nil, nil, values{}
}

// maxScratchMembers is the most members of an element whose room a builder keeps for the
// next message: browsers' elements have up to about a hundred.
const maxScratchMembers = 256

// scratchMap returns m emptied for the next message, or nil, for a new map made when first
// needed, when m grew beyond what a browser's report needs: clearing costs a map's size,
// and one body with thousands of ids must not make every later body pay for them.
func scratchMap[K comparable, V any](m map[K]V) map[K]V {
	if len(m) > maxScratchEntries {
		return nil
	}
	clear(m)
	return m
}

// maxScratchEntries is the most entries a map of the working memory keeps across
// messages: the report of a multistream room with a hundred streams has a few hundred ids.
const maxScratchEntries = 4096

// elements calls one for every element of the stats array that starts at d[pos] that can
// be stored, with the element's index and position; one returns where the element ends.
// The others are rejected.
func (b *builder) elements(pos int, one func(idx, pos int) (int, error)) error {
	d := b.sc.d
	p := jsonscan.SkipSpace(d, pos+1)
	for idx := 0; d[p] != ']'; idx++ {
		end, err := b.element(idx, p, one)
		if err != nil {
			return err
		}
		p = jsonscan.SkipSpace(d, end)
		if d[p] == ',' {
			p = jsonscan.SkipSpace(d, p+1)
		}
	}
	return nil
}

// element passes the element at d[p], of index idx, to one, or rejects it, and returns
// where it ends.
func (b *builder) element(idx, p int, one func(idx, pos int) (int, error)) (int, error) {
	if tokenAt(b.sc.d, p) != tokObject {
		end := b.sc.valueEnd(p)
		b.reject(idx, p, end, RejectNotObject, "not a JSON object")
		return end, nil
	}
	if b.check {
		if end, kind, reason := storable(b.sc.d, p); kind != "" {
			b.reject(idx, p, end, kind, reason)
			return end, nil
		}
	}
	b.at = Origin{Index: idx, Start: p}
	return one(idx, p)
}

// reject lists the element d[start:end], of index idx, in Rows.Rejected.
func (b *builder) reject(idx, start, end int, kind, reason string) {
	b.rows.Rejected = append(b.rows.Rejected, Rejected{Index: idx, Raw: b.sc.d[start:end:end], Kind: kind, Reason: reason})
}

// add adds a row of l whose stats_id is id, made from the element at hand, which ends at
// end.
func (b *builder) add(l *layout, id string, row []any, end int) {
	o := b.at
	o.End = end
	b.made = append(b.made, madeRow{l, row, o})
	if l != tables.erlang {
		if b.seen == nil {
			b.seen = make(map[statsKey]struct{}, 64)
		}
		b.seen[statsKey{l, id}] = struct{}{}
	}
}

// madeRow is a row, its table and its element, in the order the elements came.
type madeRow struct {
	l      *layout
	row    []any
	origin Origin
}

// group puts the rows made into Rows.Tables and their origins into Rows.Origins, keeping
// their order within each table: one slice for all tables, each table's part capped so
// that appending to it cannot overwrite the next.
func (b *builder) group() {
	if b.counts == nil {
		b.counts = make(map[*layout]rowCount, 8)
	}
	for _, m := range b.made {
		c := b.counts[m.l]
		c.n++
		b.counts[m.l] = c
	}
	all := make([][]any, len(b.made))
	origins := make([]Origin, len(b.made))
	n := 0
	for _, m := range b.made { // each table's part starts where the rows before it end
		if c := b.counts[m.l]; !c.placed {
			b.counts[m.l] = rowCount{n: c.n, at: n, placed: true}
			n += c.n
		}
	}
	for _, m := range b.made {
		c := b.counts[m.l]
		all[c.at], origins[c.at] = m.row, m.origin
		c.at++
		b.counts[m.l] = c
	}
	b.rows.Tables, b.rows.Origins = make(map[string][][]any, len(b.counts)), make(map[string][]Origin, len(b.counts))
	for l, c := range b.counts { // at is now where the table's part ends
		b.rows.Tables[l.name] = all[c.at-c.n : c.at : c.at]
		b.rows.Origins[l.name] = origins[c.at-c.n : c.at : c.at]
	}
	b.rows.Count = len(b.made)
}

// rowCount is what group knows of a table: its number of rows, and where the next of them
// goes in the slice of all rows once placed.
type rowCount struct {
	n, at  int
	placed bool
}

// newRow returns a row of n values, all nil, carved from a slab that the rows of a message
// share: one allocation for many rows. The first slab is sized by the body: browsers'
// reports need about one value per 16 bytes (a Chromium capture of 12 KB, 27 rows, 661
// values); later ones are smaller.
func (b *builder) newRow(n int) []any {
	if len(b.slab)+n > cap(b.slab) {
		size := 256
		if b.slab == nil {
			size = len(b.sc.d)/16 + 64
		}
		b.slab = make([]any, 0, max(n, size))
	}
	row := b.slab[len(b.slab) : len(b.slab)+n : len(b.slab)+n]
	b.slab = b.slab[:len(b.slab)+n]
	return row
}

// userAgentElement makes the row of the RTCStats element at d[pos].
func (b *builder) userAgentElement(idx, pos int) (int, error) {
	var end int
	b.fields, end = b.sc.object(pos, b.fields[:0])
	typeAt, idAt := b.last("type"), b.last("id")
	var l *layout
	var typ, id string
	var typBox, idBox any
	if typeAt >= 0 && b.fields[typeAt].tok == tokString {
		typBox = b.text(b.fields[typeAt])
		typ = typBox.(string)
		l = tables.byType[typ]
	}
	hasID := idAt >= 0 && b.fields[idAt].tok == tokString
	if hasID {
		idBox = b.text(b.fields[idAt])
		id = idBox.(string)
		if len(id) > MaxIDBytes {
			b.reject(idx, pos, end, RejectLongID, "id of "+strconv.Itoa(len(id))+" bytes, more than the "+
				strconv.Itoa(MaxIDBytes)+" an index key may have")
			return end, nil
		}
	}
	if l != nil && hasID && !b.taken(l, id) {
		row := b.typedRow(l)
		row[colChannelID], row[colSessionID], row[colConnectionID] = b.channelID, b.sessionID, b.connectionID
		row[colStatsID] = idBox
		if l.statsType >= 0 {
			row[l.statsType] = typBox
		}
		return end, b.finish(l, id, row, end)
	}
	// An element whose id its table already has (a repeated id) is kept under a derived id.
	if !hasID || l != nil || b.taken(tables.other, id) {
		id = b.derivedID("stats[" + strconv.Itoa(idx) + "]")
	}
	return end, b.otherRow(id, typeAt, pos, end)
}

// erlangElement makes the row of the element at d[pos] of a node.erlang-vm message.
func (b *builder) erlangElement(idx, pos int) (int, error) {
	var end int
	b.fields, end = b.sc.object(pos, b.fields[:0])
	typeAt := b.last("type")
	if !b.haveErlang && typeAt >= 0 && b.fields[typeAt].tok == tokString &&
		b.fields[typeAt].str() == erlangVMType {
		b.haveErlang = true
		l := tables.erlang
		row := b.typedRow(l)
		row[colErlangLabel], row[colErlangVersion], row[colErlangNodeName] = b.label, b.version, b.nodeName
		return end, b.finish(l, "", row, end)
	}
	// node_name is at most MaxIDBytes (readEnvelope), and a derived id is not much longer.
	node, _ := b.nodeName.(string)
	return end, b.otherRow(b.derivedID(node+"/stats["+strconv.Itoa(idx)+"]"), typeAt, pos, end)
}

// last returns the index in b.fields of the last member named key, -1 if there is none.
func (b *builder) last(key string) int {
	for k := len(b.fields) - 1; k >= 0; k-- {
		if string(b.fields[k].key) == key {
			return k
		}
	}
	return -1
}

// taken reports whether id is already the stats_id of a row of l in this message.
func (b *builder) taken(l *layout, id string) bool {
	_, ok := b.seen[statsKey{l, id}]
	return ok
}

// derivedID returns want, or want followed by as many "'" as make it unused in
// rtc_other_stats (only an element whose own id looks derived can force that, and ids
// are at most MaxIDBytes, so a derived id is at most one byte longer than that or want).
func (b *builder) derivedID(want string) string {
	for b.taken(tables.other, want) {
		want += "'"
	}
	return want
}

// otherRow stores the element d[pos:end] whole in rtc_other_stats.
func (b *builder) otherRow(id string, typeAt int, pos, end int) error {
	l := tables.other
	row := b.newRow(len(l.columns))
	row[colTime], row[colStatsID] = b.time, id
	row[colChannelID], row[colSessionID], row[colConnectionID] = b.channelID, b.sessionID, b.connectionID
	if typeAt >= 0 && b.fields[typeAt].tok == tokString {
		row[l.statsType] = b.fields[typeAt].str()
	}
	// The last "timestamp" member, as for typed tables; the element keeps it too.
	if k := b.last("timestamp"); k >= 0 {
		if v, ok := value(b.fields[k], kindFloat).(float64); ok {
			row[l.statsTimestamp] = v
		}
	}
	stats, err := b.rawJSON(b.sc.d[pos:end])
	if err != nil {
		return &DecodeError{Err: err}
	}
	row[l.extra] = stats
	b.add(l, id, row, end)
	return nil
}
