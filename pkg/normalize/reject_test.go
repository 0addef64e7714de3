package normalize

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"kohaku/pkg/sora"
)

// withGoodElements returns a stats array of bad as its element 1, between good elements
// of a typed table, of extra and of rtc_other_stats.
func withGoodElements(bad string) string {
	return `[{"id":"C1","type":"codec","timestamp":1,"mimeType":"audio/opus"},` + bad +
		`,{"id":"T1","type":"transport","timestamp":1,"bytesSent":5,"googX":"y"},{"id":"SC","type":"sctp-transport","timestamp":1}]`
}

func TestMessageSetsApartWhatCannotBeStored(t *testing.T) {
	longID := strings.Repeat("i", 3000)
	tests := []struct {
		name string
		bad  string // one stats element, put between the good ones
		kind string // its Reject kind; "" when it is stored
	}{
		{"NUL in a data-channel label", `{"id":"D1","type":"data-channel","timestamp":1,"label":"chat\u0000","state":"open"}`, RejectNUL},
		{"NUL in an unknown member", `{"id":"T2","type":"transport","timestamp":1,"appData":"a\u0000b"}`, RejectNUL},
		{"NUL in an id", `{"id":"IT\u0000","type":"inbound-rtp","timestamp":1,"ssrc":1,"kind":"audio"}`, RejectNUL},
		{"NUL in a member name", `{"id":"T2","type":"transport","timestamp":1,"x\u0000":1}`, RejectNUL},
		{"NUL deep in a record", `{"id":"O1","type":"outbound-rtp","timestamp":1,"qualityLimitationDurations":{"a":["\u0000"]}}`, RejectNUL},
		{"NUL in an element without a table", `{"id":"X1","type":"track","timestamp":1,"label":"\u0000"}`, RejectNUL},
		{"number beyond numeric in an unknown member", `{"id":"T2","type":"transport","timestamp":1,"x":1e200000}`, RejectNumber},
		{"number beyond numeric's scale in a typed member", `{"id":"P1","type":"candidate-pair","timestamp":1,"totalRoundTripTime":1e-20000}`, RejectNumber},
		{"zero with an exponent numeric refuses", `{"id":"C2","type":"codec","timestamp":0e1073741823}`, RejectNumber},
		{"number beyond numeric in an element without a table", `{"id":"X1","type":"track","x":-9e131072}`, RejectNumber},
		{"a 3000-byte id", `{"id":"` + longID + `","type":"codec","timestamp":1,"payloadType":111}`, RejectLongID},
		{"a 3000-byte id without a table", `{"id":"` + longID + `","type":"track"}`, RejectLongID},
		{"a string, not an object", `"codec"`, RejectNotObject},
		{"an array, not an object", `[{"id":"C3","type":"codec"}]`, RejectNotObject},
		{"null, not an object", `null`, RejectNotObject},
		{"an id of MaxIDBytes is stored", `{"id":"` + strings.Repeat("i", MaxIDBytes) + `","type":"codec","timestamp":1}`, ""},
		{"an escaped backslash before u0000 is no NUL", `{"id":"D1","type":"data-channel","timestamp":1,"label":"\\u0000"}`, ""},
		{"zero with a large exponent numeric holds is stored", `{"id":"T2","type":"transport","timestamp":1,"x":0e1073741822,"y":1e131071}`, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body := userAgentBody("01JD3K9Q2W8E5R7T1Y4U6I0R01", withGoodElements(tt.bad))
			rows, err := Message(sora.TypeUserAgent, body)
			if err != nil {
				t.Fatalf("Message: %v", err)
			}
			checkLossless(t, body, rows)
			checkRowTypes(t, rows)
			if tt.kind == "" {
				if len(rows.Rejected) != 0 || rows.Count != 4 {
					t.Fatalf("rejected %+v, %d rows; want 4 rows", rows.Rejected, rows.Count)
				}
				return
			}
			if rows.Count != 3 {
				t.Errorf("%d rows, want the 3 good elements'", rows.Count)
			}
			if len(rows.Rejected) != 1 {
				t.Fatalf("rejected %d elements, want 1", len(rows.Rejected))
			}
			r := rows.Rejected[0]
			if r.Index != 1 || r.Kind != tt.kind || string(r.Raw) != tt.bad || r.Reason == "" {
				t.Errorf("rejected stats[%d] %s %q (%s); want stats[1] %s %q", r.Index, r.Kind, r.Raw, r.Reason, tt.kind, tt.bad)
			}
		})
	}
}

func TestMessageSetsApartErlangElements(t *testing.T) {
	body := []byte(`{"type":"node.erlang-vm","timestamp":"2026-11-29T06:20:00Z","label":"L","version":"V","node_name":"sora@n1",` +
		`"stats":[{"type":"erlang-vm-memory","total":1,"x":"\u0000"},{"type":"erlang-vm-memory","total":2},{"type":"other","n":1e99999999}]}`)
	rows, err := Message(sora.TypeErlangVM, body)
	if err != nil {
		t.Fatal(err)
	}
	checkLossless(t, body, rows)
	if len(rows.Rejected) != 2 || rows.Rejected[0].Kind != RejectNUL || rows.Rejected[1].Kind != RejectNumber {
		t.Errorf("rejected %+v, want stats[0] (nul) and stats[2] (number)", rows.Rejected)
	}
	erl := rows.Tables[TableErlangVM]
	if len(erl) != 1 || columnValue(t, TableErlangVM, erl[0], "total") != int64(2) {
		t.Errorf("erlang rows %v, want the second element's", erl)
	}

	long := bytes.Replace(body, []byte(`"sora@n1"`), []byte(`"`+strings.Repeat("n", MaxIDBytes+1)+`"`), 1)
	if _, err := Message(sora.TypeErlangVM, long); err == nil || !strings.Contains(err.Error(), "node_name") {
		t.Errorf("a node_name of %d bytes: %v, want a node_name error", MaxIDBytes+1, err)
	}
}

func TestMessageTruncatesTimeToMicroseconds(t *testing.T) {
	body := bytes.Replace(userAgentBody("01JD3K9Q2W8E5R7T1Y4U6I0R02", `[{"id":"C1","type":"codec"}]`),
		[]byte(`2026-11-29T06:40:00.5Z`), []byte(`2026-11-29T06:40:00.123456789Z`), 1)
	rows, err := Message(sora.TypeUserAgent, body)
	if err != nil {
		t.Fatal(err)
	}
	want := time.Date(2026, 11, 29, 6, 40, 0, 123456000, time.UTC)
	if got := rows.Tables["rtc_codec_stats"][0][colTime]; got != want {
		t.Errorf("row time %v, want %v", got, want)
	}
	if !rows.Connection.Time.Equal(want) {
		t.Errorf("connection time %v, want %v", rows.Connection.Time, want)
	}
}
