package sora_test

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"kohaku/pkg/sora"
	"kohaku/testsupport/fixtures"
)

// webhook returns a valid connection.rtc body, without multistream as from Sora 2025.2 on,
// with the member key replaced by raw JSON (or removed when raw is "").
func webhook(key, raw string) []byte {
	b := userAgent("multistream", "")
	b = bytes.Replace(b, []byte(`"connection.user-agent"`), []byte(`"connection.rtc"`), 1)
	b = bytes.Replace(b, []byte(`"client_id":"client-1"`),
		[]byte(`"client_id":"client-1","bundle_id":"b-1","group_id":"01J2V6Q3Z1C8V4X7H9K2M5N8PT"`), 1)
	if key == "" {
		return b
	}
	var out strings.Builder
	dec := string(b[1 : len(b)-1])
	found := false
	// Members hold no top-level commas inside strings here, but stats does: split on `,"`
	// followed by a known key instead.
	for _, m := range splitMembers(dec) {
		k := m[1 : strings.Index(m[1:], `"`)+1]
		if k == key {
			found = true
			if raw == "" {
				continue
			}
			m = `"` + k + `":` + raw
		}
		if out.Len() > 0 {
			out.WriteString(",")
		}
		out.WriteString(m)
	}
	if !found && raw != "" {
		out.WriteString(`,"` + key + `":` + raw)
	}
	return []byte("{" + out.String() + "}")
}

// splitMembers splits the inside of a flat test object into its members; stats is last.
func splitMembers(s string) []string {
	i := strings.Index(s, `"stats":`)
	var out []string
	for _, m := range strings.Split(s[:i], `,"`) {
		if m == "" {
			continue
		}
		if m[0] != '"' {
			m = `"` + m
		}
		out = append(out, strings.TrimSuffix(m, ","))
	}
	return append(out, s[i:])
}

func TestValidateWebhookAccepts(t *testing.T) {
	tests := []struct {
		name string
		body []byte
	}{
		{"without multistream (Sora 2025.2)", webhook("", "")},
		{"with multistream (older webhook)", webhook("multistream", "true")},
		{"without ids", webhook("id", "")},
		{"null ids", webhook("group_id", "null")},
		{"bundle_id chosen by the application", webhook("bundle_id", `"my bundle"`)},
		{"id of 255 bytes", webhook("id", `"`+strings.Repeat("a", 255)+`"`)},
		{"unknown top-level member", webhook("x_future", `{"any":[1,2,{"thing":null}]}`)},
		{"empty stats", webhook("stats", `[]`)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := sora.Validate(sora.TypeConnectionRTC, tt.body); err != nil {
				t.Errorf("Validate: %v\nbody %s", err, tt.body)
			}
		})
	}
}

func TestValidateWebhookRejectsWithField(t *testing.T) {
	tests := []struct {
		name      string
		body      []byte
		wantField string
		wantMsg   string
	}{
		{"multistream not a boolean", webhook("multistream", `"true"`), "multistream", "must be a boolean"},
		{"multistream null", webhook("multistream", `null`), "multistream", "must be a boolean"},
		{"empty id", webhook("id", `""`), "id", "1 to 255 bytes"},
		{"id too long", webhook("id", `"`+strings.Repeat("a", 256)+`"`), "id", "1 to 255 bytes"},
		{"group_id a number", webhook("group_id", `7`), "group_id", "must be a string"},
		{"bundle_id too long", webhook("bundle_id", `"`+strings.Repeat("b", 256)+`"`), "bundle_id", "1 to 255 bytes"},
		{"session_id of wrong length", webhook("session_id", `"short"`), "session_id", "26 characters"},
		{"stats not an array", webhook("stats", `{"type":"codec"}`), "stats", "must be an array"},
		{"type of the exporter", webhook("type", `"connection.user-agent"`), "type", "sora-stats-webhook-type"},
		{"simulcast missing", webhook("simulcast", ""), "simulcast", "required"},
		{"connection_id missing", webhook("connection_id", ""), "connection_id", "required"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := sora.Validate(sora.TypeConnectionRTC, tt.body)
			var fe *sora.FieldError
			if !errors.As(err, &fe) {
				t.Fatalf("Validate = %v, want a FieldError\nbody %s", err, tt.body)
			}
			if fe.Field != tt.wantField || !strings.Contains(fe.Msg, tt.wantMsg) {
				t.Errorf("got field %q msg %q, want field %q msg containing %q", fe.Field, fe.Msg, tt.wantField, tt.wantMsg)
			}
		})
	}
}

// The exporter's connection.user-agent keeps its rules: multistream required, ids unbounded.
func TestValidateUserAgentUnchangedByWebhookRules(t *testing.T) {
	if err := sora.Validate(sora.TypeUserAgent, userAgent("id", `""`)); err != nil {
		t.Errorf("empty id of a user-agent body: %v, want accepted as before", err)
	}
	if err := sora.Validate(sora.TypeUserAgent, userAgent("group_id", `7`)); err != nil {
		t.Errorf("group_id of a user-agent body has no rule: %v", err)
	}
	var fe *sora.FieldError
	if err := sora.Validate(sora.TypeUserAgent, userAgent("multistream", "")); !errors.As(err, &fe) || fe.Field != "multistream" {
		t.Errorf("user-agent without multistream: %v, want required", err)
	}
}

func TestValidateWebhookFixtures(t *testing.T) {
	all, err := fixtures.Webhooks()
	if err != nil {
		t.Fatal(err)
	}
	if len(all) == 0 {
		t.Fatal("no webhook fixtures")
	}
	for _, f := range all {
		if err := sora.Validate(sora.TypeConnectionRTC, f.Body); err != nil {
			t.Errorf("fixture %s: %v", f.Name, err)
		}
		if got := sora.BodyType(f.Body); got != sora.TypeConnectionRTC {
			t.Errorf("BodyType(%s) = %q", f.Name, got)
		}
	}
}

func TestBodyType(t *testing.T) {
	tests := []struct {
		name, body, want string
	}{
		{"plain", `{"type":"connection.rtc","stats":[]}`, "connection.rtc"},
		{"after other members", `{"id":"x","stats":[{"type":"codec"}],"type":"connection.rtc"}`, "connection.rtc"},
		{"escaped", `{"type":"connection.rt\u0063"}`, "connection.rtc"},
		{"last of repeated", `{"type":"a","type":"connection.rtc"}`, "connection.rtc"},
		{"nested type only", `{"stats":[{"type":"codec"}]}`, ""},
		{"not a string", `{"type":1}`, ""},
		{"not an object", `["connection.rtc"]`, ""},
		{"broken JSON", `{"type":"connection.rtc",`, ""},
		{"empty", ``, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := sora.BodyType([]byte(tt.body)); got != tt.want {
				t.Errorf("BodyType(%s) = %q, want %q", tt.body, got, tt.want)
			}
		})
	}
}

func TestTypesOfEachFeed(t *testing.T) {
	tests := []struct {
		typ                         string
		known, exporter, hook, conn bool
	}{
		{sora.TypeUserAgent, true, true, false, true},
		{sora.TypeErlangVM, true, true, false, false},
		{sora.TypeConnectionRTC, true, false, true, true},
		{"connection.rtc2", false, false, false, false},
		{"", false, false, false, false},
	}
	for _, tt := range tests {
		if sora.KnownType(tt.typ) != tt.known || sora.ExporterType(tt.typ) != tt.exporter ||
			sora.WebhookType(tt.typ) != tt.hook || sora.ConnectionType(tt.typ) != tt.conn {
			t.Errorf("%q: known %v exporter %v webhook %v connection %v, want %v %v %v %v", tt.typ,
				sora.KnownType(tt.typ), sora.ExporterType(tt.typ), sora.WebhookType(tt.typ), sora.ConnectionType(tt.typ),
				tt.known, tt.exporter, tt.hook, tt.conn)
		}
	}
}
