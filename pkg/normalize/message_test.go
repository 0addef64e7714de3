package normalize

import (
	"encoding/json"
	"errors"
	"maps"
	"os"
	"reflect"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
	"weak"

	"kohaku/pkg/sora"
	"kohaku/testsupport/fixtures"
)

func TestMessageIsLosslessForEveryFixture(t *testing.T) {
	bodies := testBodies(t)
	if len(bodies) < 2 {
		t.Fatalf("want the erlang fixture and the hand-written body at least, got %d bodies", len(bodies))
	}
	for _, fx := range bodies {
		t.Run(fx.Name, func(t *testing.T) {
			rows, err := Message(fx.ExporterType, fx.Body)
			if err != nil {
				t.Fatalf("Message: %v", err)
			}
			checkLossless(t, fx.Body, rows)
			n := 0
			for _, rs := range rows.Tables {
				n += len(rs)
			}
			if rows.Count != n {
				t.Errorf("Count = %d, want %d", rows.Count, n)
			}
		})
	}
}

func TestMessagePutsTypedElementsInTheirTables(t *testing.T) {
	hand, err := os.ReadFile("testdata/user-agent.json")
	if err != nil {
		t.Fatal(err)
	}
	rows, err := Message(sora.TypeUserAgent, hand)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]int{
		"rtc_peer_connection_stats": 1, "rtc_codec_stats": 2, "rtc_inbound_rtp_stats": 2,
		"rtc_outbound_rtp_stats": 1, "rtc_remote_inbound_rtp_stats": 1,
		"rtc_remote_outbound_rtp_stats": 1, "rtc_media_source_stats": 2,
		"rtc_media_playout_stats": 1, "rtc_data_channel_stats": 1, "rtc_transport_stats": 1,
		"rtc_candidate_pair_stats": 1, "rtc_ice_candidate_stats": 2, "rtc_certificate_stats": 2,
		"rtc_other_stats": 1,
	}
	for table, n := range want {
		if got := len(rows.Tables[table]); got != n {
			t.Errorf("%s: %d rows, want %d", table, got, n)
		}
	}
	if len(rows.Tables) != len(want) {
		t.Errorf("rows in %d tables, want %d", len(rows.Tables), len(want))
	}

	c := rows.Connection
	wantTime := time.Date(2026, 11, 28, 21, 30, 0, 250000000, time.UTC)
	if c == nil || c.ConnectionID != "01JD3K9Q2W8E5R7T1Y4U6I0C11" || c.ChannelID != "handwritten" ||
		c.ClientID != "client-1" || c.Role != "sendrecv" || c.Multistream == nil || !*c.Multistream || c.Simulcast ||
		c.NodeName != "sora@127.0.0.1" || !c.Time.Equal(wantTime) || c.Time.Location() != time.UTC ||
		c.BundleID == nil || *c.BundleID != "bundle-1" || c.GroupID != nil || c.Feed != FeedExporter {
		t.Errorf("Connection = %+v", c)
	}
	var extra map[string]any
	if err := json.Unmarshal(c.Extra, &extra); err != nil {
		t.Fatal(err)
	}
	if extra["id"] != "01JD3K9Q2W8E5R7T1Y4U6I0OPA" || len(extra) != 1 {
		t.Errorf("Connection.Extra = %s, want id alone (bundle_id has a column)", c.Extra)
	}

	for table, rs := range rows.Tables {
		for _, row := range rs {
			if got := row[colTime]; got != wantTime {
				t.Errorf("%s: time = %v, want %v", table, got, wantTime)
			}
			if got := columnValue(t, table, row, "connection_id"); got != c.ConnectionID {
				t.Errorf("%s: connection_id = %v", table, got)
			}
		}
	}
	inbound := rows.Tables["rtc_inbound_rtp_stats"][0]
	for name, want := range map[string]any{
		"stats_id": "IT01V1234567890", "stats_timestamp": 1764365400250.123, "ssrc": int64(1234567890),
		"packets_lost": int64(-3), "jitter": 0.004, "kind": "video", "power_efficient_decoder": false,
		"frames_per_second": float64(30), "audio_level": nil,
	} {
		if got := columnValue(t, "rtc_inbound_rtp_stats", inbound, name); got != want {
			t.Errorf("inbound %s = %#v, want %#v", name, got, want)
		}
	}
	if x := extraOf(t, "rtc_inbound_rtp_stats", inbound); len(x) != 1 || x["googTimingFrameInfo"] == nil {
		t.Errorf("inbound extra = %v, want googTimingFrameInfo only", x)
	}
	for _, row := range rows.Tables["rtc_ice_candidate_stats"] {
		if typ := columnValue(t, "rtc_ice_candidate_stats", row, "stats_type"); typ != "local-candidate" && typ != "remote-candidate" {
			t.Errorf("candidate stats_type = %v", typ)
		}
	}
	if got := columnValue(t, "rtc_other_stats", rows.Tables["rtc_other_stats"][0], "stats_type"); got != "sctp-transport" {
		t.Errorf("other stats_type = %v, want sctp-transport", got)
	}
	if got := columnValue(t, "rtc_peer_connection_stats", rows.Tables["rtc_peer_connection_stats"][0], "extra"); got != nil {
		t.Errorf("extra of an element without other members = %s, want NULL", got)
	}
}

func TestMessageKeepsEdgeCasesLossless(t *testing.T) {
	tests := edgeCases()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body := userAgentBody("01JD3K9Q2W8E5R7T1Y4U6I0C22", tt.stats)
			rows, err := Message(sora.TypeUserAgent, body)
			if err != nil {
				t.Fatalf("Message: %v", err)
			}
			checkLossless(t, body, rows)
			if rows.Connection == nil {
				t.Error("no Connection")
			}
			for table, n := range tt.tables {
				if got := len(rows.Tables[table]); got != n {
					t.Errorf("%s: %d rows, want %d", table, got, n)
				}
			}
			if len(rows.Tables) != len(tt.tables) {
				t.Errorf("rows in %d tables, want %d", len(rows.Tables), len(tt.tables))
			}
			for _, c := range tt.columns {
				got := columnValue(t, c.table, rows.Tables[c.table][0], c.column)
				if b, ok := got.([]byte); ok {
					got = string(b)
				}
				if got != c.want {
					t.Errorf("%s.%s = %#v, want %#v", c.table, c.column, got, c.want)
				}
			}
			if tt.extraKeys != nil {
				var table string
				for table = range tt.tables {
				}
				x := extraOf(t, table, rows.Tables[table][0])
				var keys []string
				for k := range x {
					keys = append(keys, k)
				}
				slices.Sort(keys)
				if !slices.Equal(keys, tt.extraKeys) {
					t.Errorf("extra members = %v, want %v", keys, tt.extraKeys)
				}
			}
		})
	}
}

func TestMessageRejectsBodiesThatCannotBecomeRows(t *testing.T) {
	ok := string(userAgentBody("01JD3K9Q2W8E5R7T1Y4U6I0C33", `[]`))
	replace := func(old, new string) string {
		if !strings.Contains(ok, old) {
			t.Fatalf("%q not in the body", old)
		}
		return strings.Replace(ok, old, new, 1)
	}
	tests := []struct {
		name, exporterType, body, field string
	}{
		{"not JSON", sora.TypeUserAgent, `{"type":`, ""},
		{"not an object", sora.TypeUserAgent, `[1]`, ""},
		{"not UTF-8", sora.TypeUserAgent, replace(`"c"`, "\"\xff\""), ""},
		{"a NUL character in an envelope field", sora.TypeUserAgent, replace(`"c"`, `"a\u0000"`), "client_id"},
		{"a NUL character in an unknown envelope field", sora.TypeUserAgent, replace(`"stats":[]`, `"x":{"y":["\u0000"]},"stats":[]`), "x"},
		{"a NUL character in an envelope member name", sora.TypeUserAgent, replace(`"stats":[]`, `"x\u0000":1,"stats":[]`), ""},
		{"an envelope number numeric cannot hold", sora.TypeUserAgent, replace(`"stats":[]`, `"x":1e200000,"stats":[]`), "x"},
		{"an envelope number with an exponent numeric refuses", sora.TypeUserAgent, replace(`"stats":[]`, `"x":0e1073741823,"stats":[]`), "x"},
		{"a channel_id longer than an index key may be", sora.TypeUserAgent, replace(`"channel_id":"edge"`, `"channel_id":"`+strings.Repeat("c", MaxIDBytes+1)+`"`), "channel_id"},
		{"a connection_id longer than an index key may be", sora.TypeUserAgent, replace(`"01JD3K9Q2W8E5R7T1Y4U6I0C33"`, `"`+strings.Repeat("c", MaxIDBytes+1)+`"`), "connection_id"},
		{"an unknown exporter type", "node.unknown", ok, "type"},
		{"a type that is not the header's", sora.TypeErlangVM, ok, "type"},
		{"a missing timestamp", sora.TypeUserAgent, replace(`"timestamp":"2026-11-29T06:40:00.5Z",`, ``), "timestamp"},
		{"a timestamp that is not RFC 3339", sora.TypeUserAgent, replace(`2026-11-29T06:40:00.5Z`, `yesterday`), "timestamp"},
		{"a missing connection_id", sora.TypeUserAgent, replace(`"connection_id":"01JD3K9Q2W8E5R7T1Y4U6I0C33",`, ``), "connection_id"},
		{"a number for channel_id", sora.TypeUserAgent, replace(`"channel_id":"edge"`, `"channel_id":1`), "channel_id"},
		{"a null multistream", sora.TypeUserAgent, replace(`"multistream":false`, `"multistream":null`), "multistream"},
		{"a missing spotlight", sora.TypeUserAgent, replace(`"spotlight":false,`, ``), "spotlight"},
		{"stats that are not an array", sora.TypeUserAgent, replace(`"stats":[]`, `"stats":{}`), "stats"},
		{"a missing stats", sora.TypeUserAgent, replace(`,"stats":[]`, ``), "stats"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rows, err := Message(tt.exporterType, []byte(tt.body))
			var de *DecodeError
			if !errors.As(err, &de) {
				t.Fatalf("Message = %v, %v; want a *DecodeError", rows, err)
			}
			if de.Field != tt.field {
				t.Errorf("Field = %q, want %q (%v)", de.Field, tt.field, err)
			}
		})
	}
}

func TestMessageStoresErlangVMMemory(t *testing.T) {
	body := []byte(`{"type":"node.erlang-vm","id":"X","timestamp":"2026-11-29T06:20:00.123456Z","label":"L","version":"V","node_name":"sora@n1",` +
		`"stats":[{"type":"erlang-vm-memory","total":61234176,"processes":1,"processes_used":2,"system":3,"atom":4,"atom_used":5,"binary":6,"code":7,"ets":"8","new":true},` +
		`{"type":"erlang-vm-memory","total":1},{"type":"other"}]}`)
	rows, err := Message(sora.TypeErlangVM, body)
	if err != nil {
		t.Fatal(err)
	}
	checkLossless(t, body, rows)
	if rows.Connection != nil {
		t.Errorf("Connection = %+v, want nil", rows.Connection)
	}
	erl := rows.Tables[TableErlangVM]
	if len(erl) != 1 || len(rows.Tables[TableOther]) != 2 {
		t.Fatalf("rows = %v, want one erlang row and two others", rows.Tables)
	}
	for name, want := range map[string]any{
		"time": time.Date(2026, 11, 29, 6, 20, 0, 123456000, time.UTC), "label": "L", "version": "V",
		"node_name": "sora@n1", "total": int64(61234176), "binary": int64(6), "ets": nil,
	} {
		if got := columnValue(t, TableErlangVM, erl[0], name); got != want {
			t.Errorf("%s = %#v, want %#v", name, got, want)
		}
	}
	for _, row := range rows.Tables[TableOther] {
		if got := columnValue(t, TableOther, row, "connection_id"); got != "" {
			t.Errorf("other connection_id = %#v, want empty", got)
		}
		if id := columnValue(t, TableOther, row, "stats_id").(string); !strings.HasPrefix(id, "sora@n1/stats[") {
			t.Errorf("other stats_id = %q", id)
		}
	}
}

func TestColumnsAndTypesAgree(t *testing.T) {
	if len(StatsTables()) != 15 {
		t.Errorf("StatsTables() = %v, want 13 rtc tables, other and erlang", StatsTables())
	}
	for _, table := range StatsTables() {
		cols, types := Columns(table), ColumnTypes(table)
		if len(cols) != len(types) || len(cols) == 0 {
			t.Errorf("%s: %d columns, %d types", table, len(cols), len(types))
		}
		seen := map[string]bool{}
		for _, c := range cols {
			if seen[c] {
				t.Errorf("%s: column %s twice", table, c)
			}
			seen[c] = true
		}
		if cols[0] != "time" || types[0] != "timestamptz" {
			t.Errorf("%s: first column %s %s, want time timestamptz", table, cols[0], types[0])
		}
	}
	if Columns("nope") != nil || Columns(TableConnection) != nil {
		t.Error("Columns of a table Message does not fill is not nil")
	}
}

func TestMessageConnectionOfEachFeed(t *testing.T) {
	hooks, err := fixtures.Webhooks()
	if err != nil {
		t.Fatal(err)
	}
	body := func(name string) []byte {
		for _, h := range hooks {
			if h.Name == name {
				return h.Body
			}
		}
		t.Fatalf("no webhook fixture %s", name)
		return nil
	}
	hand, err := os.ReadFile("testdata/user-agent.json")
	if err != nil {
		t.Fatal(err)
	}
	numericBundle := []byte(strings.Replace(string(hand), `"bundle_id": "bundle-1"`, `"bundle_id": 7`, 1))
	if string(numericBundle) == string(hand) {
		t.Fatal("testdata/user-agent.json has no bundle_id to replace")
	}
	tests := []struct {
		name        string
		typ         string
		body        []byte
		multistream string // "nil", "true" or "false"
		group       string // "" for nil
		bundle      string // "" for nil
		feed        string
		extraKeys   []string
	}{
		{"webhook without multistream", sora.TypeConnectionRTC, body("webhook-pc2-1"), "nil",
			"kohaku-fixture-group", "01M9JZ12W8NAW514Z603GDRW4W", FeedWebhook, []string{"id"}},
		{"webhook with multistream", sora.TypeConnectionRTC, body("webhook-pc1-1"), "true",
			"kohaku-fixture-group", "01M9JZ12W8NFRG4SR9643P9V8N", FeedWebhook, []string{"id"}},
		{"webhook with an unknown member", sora.TypeConnectionRTC, body("webhook-pc2-4"), "nil",
			"kohaku-fixture-group", "01M9JZ12W8NAW514Z603GDRW4W", FeedWebhook, []string{"id", "x_kohaku_future_member"}},
		{"exporter", sora.TypeUserAgent, hand, "true", "", "bundle-1", FeedExporter, []string{"id"}},
		{"exporter bundle_id not a string stays in extra", sora.TypeUserAgent, numericBundle, "true", "", "", FeedExporter, []string{"bundle_id", "id"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rows, err := Message(tt.typ, tt.body)
			if err != nil {
				t.Fatal(err)
			}
			c := rows.Connection
			if c == nil {
				t.Fatal("no Connection")
			}
			got := "nil"
			if c.Multistream != nil {
				got = strconv.FormatBool(*c.Multistream)
			}
			deref := func(p *string) string {
				if p == nil {
					return ""
				}
				return *p
			}
			if got != tt.multistream || deref(c.GroupID) != tt.group || deref(c.BundleID) != tt.bundle || c.Feed != tt.feed {
				t.Errorf("multistream %s group %q bundle %q feed %q, want %s %q %q %q",
					got, deref(c.GroupID), deref(c.BundleID), c.Feed, tt.multistream, tt.group, tt.bundle, tt.feed)
			}
			var extra map[string]any
			if err := json.Unmarshal(c.Extra, &extra); err != nil {
				t.Fatal(err)
			}
			keys := slices.Sorted(maps.Keys(extra))
			if !slices.Equal(keys, tt.extraKeys) {
				t.Errorf("extra keys %v, want %v", keys, tt.extraKeys)
			}
		})
	}
}

func TestMessageWebhookRejectsWhatValidationRejects(t *testing.T) {
	hooks, err := fixtures.Webhooks()
	if err != nil {
		t.Fatal(err)
	}
	b := strings.Replace(string(hooks[0].Body), `"multistream":true`, `"multistream":"yes"`, 1)
	if _, err := Message(sora.TypeConnectionRTC, []byte(b)); err == nil {
		t.Error("multistream \"yes\" accepted")
	}
	b = strings.Replace(string(hooks[0].Body), `"simulcast":false,`, ``, 1)
	if _, err := Message(sora.TypeConnectionRTC, []byte(b)); err == nil {
		t.Error("a webhook without simulcast accepted")
	}
}

// TestNormalizerGivesWhatMessageGives normalizes a sequence of bodies with one Normalizer,
// large ones and failing ones between browsers' reports, and checks every result against
// Message's, also after the whole sequence: the working memory it keeps changes no
// result, and no later body changes the rows of an earlier one.
func TestNormalizerGivesWhatMessageGives(t *testing.T) {
	type input struct {
		name, exporterType string
		body               []byte
	}
	var reports []input
	for _, fx := range testBodies(t) {
		reports = append(reports, input{fx.Name, fx.ExporterType, fx.Body})
	}
	var manyIDs strings.Builder
	manyIDs.WriteString("[")
	for k := range maxScratchEntries + 100 {
		if k > 0 {
			manyIDs.WriteString(",")
		}
		manyIDs.WriteString(`{"id":"T` + strconv.Itoa(k) + `","type":"transport","timestamp":1}`)
	}
	manyIDs.WriteString("]")
	large := []input{
		{"many members in one element", sora.TypeUserAgent, manyMembersBody("element", 5*maxScratchMembers)},
		{"many ids", sora.TypeUserAgent, userAgentBody("01JD3K9Q2W8E5R7T1Y4U6I0B02", manyIDs.String())},
		{"not JSON", sora.TypeUserAgent, []byte(`{"type":`)},
		{"a missing stats", sora.TypeUserAgent, []byte(`{"type":"connection.user-agent"}`)},
	}
	var seq []input
	seq = append(seq, reports...)
	for _, l := range large {
		seq = append(seq, l)
		seq = append(seq, reports...)
	}
	backward := slices.Clone(reports)
	slices.Reverse(backward)
	seq = append(seq, backward...)

	var n Normalizer
	type result struct {
		rows *Rows
		err  error
	}
	got := make([]result, len(seq))
	check := func(when string, i int) {
		in := seq[i]
		want, wantErr := Message(in.exporterType, in.body)
		if !reflect.DeepEqual(got[i].rows, want) || (got[i].err == nil) != (wantErr == nil) {
			t.Fatalf("%s, body %d (%s): the Normalizer gave %v, %v; Message gives %v, %v", when, i, in.name, got[i].rows, got[i].err, want, wantErr)
		}
	}
	for i, in := range seq {
		got[i].rows, got[i].err = n.Message(in.exporterType, in.body)
		check("when made", i)
	}
	for i := range seq {
		check("after the sequence", i)
	}
}

// TestNormalizerKeepsNothingOfAMessage drops a body and its rows after a Normalizer made
// them and checks that the collector reclaims both: the writer's collector keeps its
// Normalizer for as long as it pulls, and a large body must not stay alive with it.
func TestNormalizerKeepsNothingOfAMessage(t *testing.T) {
	var n Normalizer
	for _, fx := range testBodies(t) {
		body := slices.Clone(fx.Body)
		rows, err := n.Message(fx.ExporterType, body)
		if err != nil {
			t.Fatalf("%s: %v", fx.Name, err)
		}
		bodyRef, rowsRef := weak.Make(&body[0]), weak.Make(rows)
		body, rows = nil, nil
		runtime.GC()
		if bodyRef.Value() != nil || rowsRef.Value() != nil {
			t.Fatalf("%s: after the message, the Normalizer still holds its body (%t) or its rows (%t)",
				fx.Name, bodyRef.Value() != nil, rowsRef.Value() != nil)
		}
	}
	runtime.KeepAlive(&n)
}
