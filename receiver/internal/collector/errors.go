package collector

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"kohaku/pkg/sora"
	"kohaku/pkg/stream"
)

// Failures that carry no data: a body that is not JSON, and NATS or the receiver not
// ready (from publish and Ready). Each maps to one status in classify.
var (
	errNotJSON      = errors.New("content-type must be application/json")
	errNotConnected = errors.New("nats: not connected")
	errDraining     = errors.New("receiver is shutting down")
)

// encodingError is a body sent with a content coding other than identity.
type encodingError struct{ coding string }

func (e *encodingError) Error() string {
	return "content-encoding " + e.coding + " is not accepted: send the body uncompressed"
}

// tooLargeError is a body over the limit, announced by Content-Length or found while
// reading.
type tooLargeError struct{ limit int64 }

func (e *tooLargeError) Error() string { return fmt.Sprintf("body larger than %d bytes", e.limit) }

// readError is a body that could not be read: the client went away or was too slow.
type readError struct{ err error }

func (e *readError) Error() string { return "read body: " + e.err.Error() }
func (e *readError) Unwrap() error { return e.err }

// publishError is a failed publish to JetStream. All of them but a message that the stream
// can never hold are worth retrying, so they become 503 with Retry-After.
type publishError struct{ err error }

func (e *publishError) Error() string { return "publish: " + e.err.Error() }
func (e *publishError) Unwrap() error { return e.err }

// retryable reports whether a publish failure is the stream being unavailable, slow or full
// (503) rather than the message being unacceptable (413).
func (e *publishError) retryable() bool {
	if errors.Is(e.err, nats.ErrMaxPayload) {
		return false
	}
	var api *jetstream.APIError
	if errors.As(e.err, &api) && api.ErrorCode == jetstream.JSErrCodeStreamMessageExceedsMaximum {
		return false
	}
	return true
}

// errorBody is the JSON body of every failure: the shape of sora.FieldError, so that a
// client reads one format whatever went wrong.
type errorBody = sora.FieldError

// classify maps an error of the request path to its status and body. It is the one place
// that decides statuses (DESIGN.md section 2, "Answers").
func classify(err error) (int, *errorBody) {
	var (
		field   *sora.FieldError
		limit   *sora.LimitError
		coding  *encodingError
		large   *tooLargeError
		maxRead *http.MaxBytesError
		read    *readError
		pub     *publishError
		typ     *typeError
		auth    *authError
	)
	switch {
	case errors.As(err, &auth):
		return http.StatusUnauthorized, &errorBody{Field: "authorization", Msg: auth.Error()}
	case errors.As(err, &field):
		return http.StatusBadRequest, field
	case errors.As(err, &limit):
		// Well formed maybe, but more work than one request may ask for.
		return http.StatusRequestEntityTooLarge, &errorBody{Field: limit.Field, Msg: limit.Msg}
	case errors.As(err, &typ):
		return http.StatusBadRequest, &errorBody{Field: typ.field, Msg: typ.msg}
	case errors.Is(err, sora.ErrUnknownType):
		// Routes check the type before Validate; should they ever disagree, the sender
		// must not retry forever as it would after a 503.
		return http.StatusBadRequest, &errorBody{Field: "type", Msg: "unknown type"}
	case errors.Is(err, errNotJSON):
		return http.StatusUnsupportedMediaType, &errorBody{Field: "content-type", Msg: err.Error()}
	case errors.As(err, &coding):
		return http.StatusUnsupportedMediaType, &errorBody{Field: "content-encoding", Msg: coding.Error()}
	case errors.As(err, &large):
		return http.StatusRequestEntityTooLarge, &errorBody{Msg: large.Error()}
	case errors.As(err, &maxRead):
		return http.StatusRequestEntityTooLarge, &errorBody{Msg: fmt.Sprintf("body larger than %d bytes", maxRead.Limit)}
	case errors.As(err, &read):
		return http.StatusBadRequest, &errorBody{Msg: "could not read the body"}
	case errors.As(err, &pub) && !pub.retryable():
		return http.StatusRequestEntityTooLarge, &errorBody{Msg: "message larger than the stream accepts"}
	case errors.Is(err, errDraining):
		return http.StatusServiceUnavailable, &errorBody{Msg: errDraining.Error()}
	case stream.IsFull(err):
		// A publish refused by the DiscardNew stream, or /.ok while it is full: nothing
		// acknowledged is deleted to make room, so the sender must come back later.
		return http.StatusServiceUnavailable, &errorBody{Msg: "stream full: the writers are behind, retry later"}
	}
	// NATS disconnected, a publish timeout, no stream responding, the stream refusing:
	// the sender must retry, nothing was stored for sure.
	return http.StatusServiceUnavailable, &errorBody{Msg: "stream unavailable, retry later"}
}

// writeError answers a failed request and returns the status it wrote. Every failure of the
// request path goes through here.
func writeError(w http.ResponseWriter, err error, retryAfter time.Duration) int {
	status, body := classify(err)
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("X-Content-Type-Options", "nosniff")
	switch status {
	case http.StatusServiceUnavailable:
		h.Set("Retry-After", strconv.Itoa(retryAfterSeconds(retryAfter)))
	case http.StatusUnauthorized:
		h.Set("WWW-Authenticate", `Basic realm="kohaku"`) // RFC 7617: a 401 names its scheme
	}
	w.WriteHeader(status)
	b, _ := json.Marshal(body) // a struct of two strings always marshals
	w.Write(append(b, '\n'))
	return status
}

// retryAfterSeconds rounds up: Retry-After counts whole seconds and 0 would invite a storm.
func retryAfterSeconds(d time.Duration) int {
	return max(1, int((d+time.Second-1)/time.Second))
}
