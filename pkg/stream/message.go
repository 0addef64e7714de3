package stream

import (
	"time"

	"github.com/nats-io/nats.go"
)

// NewMsg returns the stream message of a body of exporter type typ, as the receiver
// publishes it: subject kohaku.stats.<typ> (Subject), Data body itself (not copied), and the
// headers of DESIGN.md section 3: Nats-Msg-Id = MsgID(typ, body), Kohaku-Exporter-Type typ,
// Kohaku-Received-At receivedAt in UTC as RFC 3339 with nanoseconds, and Kohaku-Receiver
// receiver, the instance id.
func NewMsg(typ string, body []byte, receivedAt time.Time, receiver string) *nats.Msg {
	// One map literal of its final size: this runs once per request on the receiver.
	return &nats.Msg{
		Subject: Subject(typ),
		Data:    body,
		Header: nats.Header{
			HeaderMsgID:        {MsgID(typ, body)},
			HeaderExporterType: {typ},
			HeaderReceivedAt:   {receivedAt.UTC().Format(time.RFC3339Nano)},
			HeaderReceiver:     {receiver},
		},
	}
}
