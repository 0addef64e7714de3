package stream_test

import (
	"bytes"
	"testing"
	"time"

	"kohaku/pkg/stream"
)

func TestNewMsg(t *testing.T) {
	jst := time.FixedZone("JST", 9*60*60)
	for _, tc := range []struct {
		name       string
		typ        string
		body       []byte
		receivedAt time.Time
		receiver   string
		wantSubj   string
		wantAt     string
	}{
		{name: "user agent, UTC", typ: "connection.user-agent", body: []byte(`{"type":"connection.user-agent"}`),
			receivedAt: time.Date(2025, 1, 31, 9, 0, 0, 123456789, time.UTC), receiver: "receiver-1",
			wantSubj: "kohaku.stats.connection.user-agent", wantAt: "2025-01-31T09:00:00.123456789Z"},
		{name: "local time is written in UTC", typ: "node.erlang-vm", body: []byte(`{}`),
			receivedAt: time.Date(2025, 1, 31, 18, 0, 0, 0, jst), receiver: "receiver-2",
			wantSubj: "kohaku.stats.node.erlang-vm", wantAt: "2025-01-31T09:00:00Z"},
		{name: "webhook, empty body", typ: "connection.rtc", body: nil,
			receivedAt: time.Date(2025, 1, 31, 9, 0, 0, 500000000, time.UTC), receiver: "",
			wantSubj: "kohaku.stats.connection.rtc", wantAt: "2025-01-31T09:00:00.5Z"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			msg := stream.NewMsg(tc.typ, tc.body, tc.receivedAt, tc.receiver)
			if msg.Subject != tc.wantSubj {
				t.Errorf("subject: got %q, want %q", msg.Subject, tc.wantSubj)
			}
			if !bytes.Equal(msg.Data, tc.body) || (len(tc.body) > 0 && &msg.Data[0] != &tc.body[0]) {
				t.Errorf("data: got %q, want the body itself, %q", msg.Data, tc.body)
			}
			want := map[string]string{
				stream.HeaderMsgID:        stream.MsgID(tc.typ, tc.body),
				stream.HeaderExporterType: tc.typ,
				stream.HeaderReceivedAt:   tc.wantAt,
				stream.HeaderReceiver:     tc.receiver,
			}
			if len(msg.Header) != len(want) {
				t.Errorf("headers: got %v, want exactly the %d of %v", msg.Header, len(want), want)
			}
			for k, v := range want {
				if got := msg.Header.Values(k); len(got) != 1 || got[0] != v {
					t.Errorf("header %s: got %q, want [%q]", k, got, v)
				}
			}
		})
	}
}

// TestNewMsgIDsDiffer checks that the deduplication id tells apart what JetStream must store
// twice: the same body under another type, another body under the same type.
func TestNewMsgIDsDiffer(t *testing.T) {
	at := time.Now()
	a := stream.NewMsg("connection.user-agent", []byte("{}"), at, "r")
	for _, tc := range []struct {
		name string
		typ  string
		body string
	}{
		{name: "other type", typ: "node.erlang-vm", body: "{}"},
		{name: "other body", typ: "connection.user-agent", body: "{ }"},
		{name: "type and body run together", typ: "connection.user-agent{", body: "}"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := stream.NewMsg(tc.typ, []byte(tc.body), at, "r")
			if got := b.Header.Get(stream.HeaderMsgID); got == a.Header.Get(stream.HeaderMsgID) {
				t.Errorf("%s and %s/%s have the same Nats-Msg-Id %s", "connection.user-agent/{}", tc.typ, tc.body, got)
			}
		})
	}
}

// BenchmarkNewMsg shows the receiver's cost per request of building the message.
func BenchmarkNewMsg(b *testing.B) {
	body := bytes.Repeat([]byte("x"), 4096)
	at := time.Now()
	b.ReportAllocs()
	for b.Loop() {
		stream.NewMsg("connection.user-agent", body, at, "receiver-1")
	}
}
