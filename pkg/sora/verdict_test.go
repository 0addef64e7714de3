package sora_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"kohaku/pkg/normalize"
	"kohaku/pkg/sora"
	"kohaku/testsupport/fixtures"
)

// FuzzValidateAgreesWithNormalize holds the receiver's verdict to what the writer would
// store: a body that sora.Validate accepts must become rows (normalize.Message succeeds),
// and the rules that Validate checked must hold on the values stored, which normalization
// decodes. So no escape, repeated member or element order can slip a value past
// validation that breaks a rule in the database.
//
// The message type is a byte that picks one of the three, so that the fuzzer spends its
// time on bodies. Large seeds make minimizing slow; fuzz with a short minimize time:
//
//	go test -run XXX -fuzz FuzzValidateAgreesWithNormalize -fuzztime 60s -fuzzminimizetime 2s ./pkg/sora
func FuzzValidateAgreesWithNormalize(f *testing.F) {
	types := []string{sora.TypeUserAgent, sora.TypeErlangVM, sora.TypeConnectionRTC}
	add := func(typ string, body []byte) { f.Add(uint8(slices.Index(types, typ)), body) }
	all, err := fixtures.All()
	if err != nil {
		f.Fatal(err)
	}
	for _, fx := range all {
		add(fx.ExporterType, fx.Body)
	}
	hooks, err := fixtures.Webhooks()
	if err != nil {
		f.Fatal(err)
	}
	for _, fx := range hooks {
		add(fx.ExporterType, fx.Body)
	}
	add(sora.TypeUserAgent, userAgent("", ""))
	add(sora.TypeUserAgent, userAgent("role", `"send\u0072ecv"`))
	add(sora.TypeUserAgent, userAgent("session_id", `"\u0030\u0031J2V6Q3Z1C8V4X7H9K2M5N8PR"`))
	add(sora.TypeUserAgent, userAgent("stats", `[{"type":"codec","\u0069d":"c","id":"d"},{"type":"codec","id":"c"}]`))
	add(sora.TypeConnectionRTC, webhook("", ""))
	add(sora.TypeConnectionRTC, webhook("bundle_id", `"b\u00e9"`))
	add(sora.TypeErlangVM, erlangVM(`[{"type":"erlang-vm-memor\u0079",`+goodMemory+`}]`))
	// Issue 13: a validator that compared the raw type would let the first element's
	// figure through, and the writer store it.
	add(sora.TypeErlangVM, erlangVM(`[{"type":"erlang-vm-memor\u0079",`+strings.Replace(goodMemory, `"total":1`, `"total":-5`, 1)+
		`},{"type":"erlang-vm-memory",`+goodMemory+`}]`))
	add(sora.TypeErlangVM, erlangVM(`[{"type":"erlang-vm-memory","type":"x",`+goodMemory+`},{"type":"erlang-vm-memory",`+goodMemory+`}]`))
	add(sora.TypeErlangVM, erlangVM(`[{"\u0074ype":"erlang-vm-memory",`+goodMemory+`,"t\u006ftal":0}]`))
	add(sora.TypeErlangVM, erlangVM(`[{"type":"erlang-vm-memory",`+goodMemory+`,"x":"\u0000"}]`))
	add(sora.TypeUserAgent, userAgent("stats", `[{"type":"codec","id":"c","x":"\u0000"},{"type":"codec","id":"d","y":1e9999999999}]`))
	add(sora.TypeUserAgent, userAgent("extra", `{"n":1.5e300,"s":"\u0001"}`))

	f.Fuzz(func(t *testing.T, which uint8, body []byte) {
		typ := types[int(which)%len(types)]
		if sora.Validate(typ, body) != nil {
			return
		}
		rows, err := normalize.Message(typ, body)
		if err != nil {
			t.Fatalf("Validate accepted what normalize.Message refuses: %v\nbody %q", err, body)
		}
		var problems []string
		if sora.ConnectionType(typ) {
			problems = connectionProblems(typ, rows)
		} else {
			problems = erlangProblems(rows)
		}
		problems = append(problems, statsIDProblems(rows)...)
		for _, p := range problems {
			t.Errorf("Validate accepted, but the writer would store %s", p)
		}
		if len(problems) > 0 {
			t.Logf("body %q", body)
		}
	})
}

// connectionProblems returns the envelope rules of DESIGN.md section 2 that the decoded
// sora_connection row of a connection's report breaks.
func connectionProblems(typ string, rows *normalize.Rows) []string {
	c := rows.Connection
	if c == nil {
		return []string{"no sora_connection row"}
	}
	var out []string
	if !slices.Contains([]string{"sendrecv", "sendonly", "recvonly"}, c.Role) {
		out = append(out, fmt.Sprintf("role %q", c.Role))
	}
	for name, id := range map[string]string{"session_id": c.SessionID, "connection_id": c.ConnectionID} {
		if utf8.RuneCountInString(id) != 26 {
			out = append(out, fmt.Sprintf("%s %q, not 26 characters", name, id))
		}
	}
	ids := map[string]*string{"channel_id": &c.ChannelID, "client_id": &c.ClientID}
	if typ == sora.TypeConnectionRTC {
		ids["group_id"], ids["bundle_id"] = c.GroupID, c.BundleID
	}
	for name, id := range ids {
		if id != nil && (len(*id) == 0 || len(*id) > sora.DefaultMaxIDBytes) {
			out = append(out, fmt.Sprintf("%s of %d bytes", name, len(*id)))
		}
	}
	if typ == sora.TypeUserAgent && c.Multistream == nil {
		out = append(out, "no multistream")
	}
	if c.Time.IsZero() || c.Time.Location() != time.UTC {
		out = append(out, fmt.Sprintf("time %v", c.Time))
	}
	return out
}

// erlangProblems returns what breaks the rules of a node.erlang-vm report in its rows: one
// sora_node_erlang_vm_memory row, whose nine figures are non-negative integers, unless
// its element was set apart for the dead-letter table.
func erlangProblems(rows *normalize.Rows) []string {
	mem := rows.Tables[normalize.TableErlangVM]
	switch {
	case len(mem) == 0 && len(rows.Rejected) > 0:
		return nil
	case len(mem) != 1:
		return []string{fmt.Sprintf("%d %s rows, want 1", len(mem), normalize.TableErlangVM)}
	}
	var out []string
	for k, col := range normalize.Columns(normalize.TableErlangVM) {
		switch col {
		case "total", "processes", "processes_used", "system", "atom", "atom_used", "binary", "code", "ets":
			if v, ok := mem[0][k].(int64); !ok || v < 0 {
				out = append(out, fmt.Sprintf("%s = %#v, not a non-negative integer", col, mem[0][k]))
			}
		}
	}
	return out
}

// statsIDProblems returns the stats ids too long for a natural key's index row: the
// element's own id within MaxIDBytes, or one derived from its index (and the node's name),
// a little longer.
func statsIDProblems(rows *normalize.Rows) []string {
	var out []string
	for table, rs := range rows.Tables {
		k := slices.Index(normalize.Columns(table), "stats_id")
		if k < 0 {
			continue
		}
		for _, r := range rs {
			if id, _ := r[k].(string); len(id) > 2*sora.DefaultMaxIDBytes {
				out = append(out, fmt.Sprintf("a %s stats_id of %d bytes", table, len(id)))
			}
		}
	}
	return out
}
