package stream

import (
	"errors"
	"strings"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// ErrFull is the stream having no room for a message: a publish refused by the DiscardNew
// stream, or Monitor.Full while the stream stays full. Nothing was stored; the sender
// should retry later.
var ErrFull = errors.New("stream: full")

// errCodeStoreFailed is JetStream's JSStreamStoreFailedF (10077): a message the stream
// could not store, the reason in the description. nats.go has no constant for it.
const errCodeStoreFailed jetstream.ErrorCode = 10077

// IsFull reports whether err is JetStream refusing a message because the DiscardNew stream
// reached its MaxBytes or MaxMsgs limit. nats-server answers such a publish with
// JSStreamStoreFailedF and the store's error as the description ("maximum bytes exceeded",
// "maximum messages exceeded"; server/store.go, ErrMaxBytes and ErrMaxMsgs); its other
// store failures are no sign of a full stream.
func IsFull(err error) bool {
	if errors.Is(err, ErrFull) {
		return true
	}
	var api *jetstream.APIError
	if !errors.As(err, &api) || api.ErrorCode != errCodeStoreFailed {
		return false
	}
	d := api.Description
	return strings.Contains(d, "maximum bytes exceeded") || strings.Contains(d, "maximum messages exceeded")
}

// StoredSize returns about how many bytes msg takes in the stream, as JetStream counts
// them against MaxBytes: subject, headers as sent, data and the store's record overhead.
func StoredSize(msg *nats.Msg) int64 {
	n := len("NATS/1.0\r\n\r\n") + len(msg.Subject) + len(msg.Data) + recordOverhead
	for k, vs := range msg.Header {
		for _, v := range vs {
			n += len(k) + len(": \r\n") + len(v)
		}
	}
	return int64(n)
}

// recordOverhead is what the file store adds to a message with headers: a 22-byte record
// header, 4 bytes of header length and an 8-byte checksum (nats-server's fileStoreMsgSize).
const recordOverhead = 34
