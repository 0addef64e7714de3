package collector

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"kohaku/pkg/sora"
	"kohaku/pkg/stream"
)

// headerReserve is what NATS headers take of a message's max payload; the body limit
// leaves it free so that a body under the limit always fits in one message.
const headerReserve = 1024

// maxIDBytesCap bounds Options.MaxIDBytes: the writer stores no id longer than this
// (normalize.MaxIDBytes), keeping its index rows under PostgreSQL's btree limit of about
// 2,700 bytes, so the receiver must not accept one.
const maxIDBytesCap = 1024

// Options configure a Handler. They are part of the receiver's configuration: each field is
// the variable its tag names (KOHAKU_ prefixed), with its default there.
type Options struct {
	// ReceiverID names this instance in the Kohaku-Receiver header. NewHandler needs it;
	// the receiver puts the host name in it when the variable is empty.
	ReceiverID string `envconfig:"RECEIVER_ID" default:"" desc:"instance id sent in the Kohaku-Receiver header; empty means the host name"`
	// WebhookPath is where the stats webhook is served: an absolute, clean path of
	// unreserved URL characters, other than / and the other routes' paths.
	WebhookPath string `envconfig:"STATS_WEBHOOK_PATH" default:"/stats-webhook" desc:"path of the stats webhook (POST, Sora 2025.1 and later); the stats exporter stays on /collector"`
	// MaxBodyBytes is the largest body accepted; it is capped further by the NATS server's
	// max payload once connected.
	MaxBodyBytes int64 `split_words:"true" default:"4194304" desc:"largest request body; capped further by the NATS server's max payload"`
	// MaxElements, MaxMembers and MaxIDBytes are the sora.Limits that every body is
	// validated under, so that no request costs the writer more than its share (DESIGN.md
	// section 1). Their defaults are sora's (a test keeps them equal), which leave a margin
	// of four over a 200-participant multistream room (see sora.DefaultMaxElements).
	// MaxIDBytes is at most maxIDBytesCap.
	MaxElements int `split_words:"true" default:"5000" desc:"most stats elements in one report (a 200-participant multistream room sends about 1,200); more is answered 413"`
	MaxMembers  int `split_words:"true" default:"500" desc:"most members of one stats element or of the report's top level (browsers send up to about 50); more is answered 413"`
	MaxIDBytes  int `envconfig:"MAX_ID_BYTES" default:"255" desc:"longest id, in bytes: a stats element's id and type, the report's id, group_id, bundle_id and node_name (at most 1024); longer is answered 400"`
	// PublishTimeout bounds the wait for a PubAck.
	PublishTimeout time.Duration `split_words:"true" default:"5s" desc:"longest wait for JetStream's acknowledgement before answering 503"`
	// RetryAfter is sent with every 503.
	RetryAfter time.Duration `split_words:"true" default:"5s" desc:"Retry-After sent with 503, rounded up to whole seconds"`
	// BasicAuth, when set, is the credential that both ingest routes require; GET /.ok
	// stays open. It is no variable of its own: the receiver builds it from the
	// KOHAKU_BASIC_AUTH_* variables.
	BasicAuth *BasicAuth `ignored:"true"`
}

// Validate reports every invalid field of o, naming its variable. An empty ReceiverID is
// valid configuration: it stands for the host name.
func (o Options) Validate() error {
	var errs []error
	if o.MaxBodyBytes <= 0 {
		errs = append(errs, fmt.Errorf("KOHAKU_MAX_BODY_BYTES must be positive, got %d", o.MaxBodyBytes))
	}
	if o.PublishTimeout <= 0 {
		errs = append(errs, fmt.Errorf("KOHAKU_PUBLISH_TIMEOUT must be positive, got %s", o.PublishTimeout))
	}
	if o.RetryAfter <= 0 {
		errs = append(errs, fmt.Errorf("KOHAKU_RETRY_AFTER must be positive, got %s", o.RetryAfter))
	}
	if o.MaxElements <= 0 {
		errs = append(errs, fmt.Errorf("KOHAKU_MAX_ELEMENTS must be positive, got %d", o.MaxElements))
	}
	if o.MaxMembers <= 0 {
		errs = append(errs, fmt.Errorf("KOHAKU_MAX_MEMBERS must be positive, got %d", o.MaxMembers))
	}
	if o.MaxIDBytes <= 0 || o.MaxIDBytes > maxIDBytesCap {
		errs = append(errs, fmt.Errorf("KOHAKU_MAX_ID_BYTES must be 1 to %d, got %d", maxIDBytesCap, o.MaxIDBytes))
	}
	if err := checkWebhookPath(o.WebhookPath); err != nil {
		errs = append(errs, fmt.Errorf("KOHAKU_STATS_WEBHOOK_PATH: %w", err))
	}
	if o.BasicAuth != nil {
		errs = append(errs, o.BasicAuth.validate())
	}
	return errors.Join(errs...)
}

// Handler serves the stats exporter on POST /collector, the stats webhook on POST
// Options.WebhookPath, and GET /.ok. It is safe for concurrent use; requests publish
// concurrently over one NATS connection.
type Handler struct {
	nc     *nats.Conn
	js     jetstream.JetStream
	o      Options
	limits sora.Limits // from o
	auth   *credential // nil: no authentication
	log    *slog.Logger
	m      *metrics
	mux    *http.ServeMux
	stream *stream.Monitor // the stream's fill, whether it is full
	bodies bodyPool

	draining atomic.Bool
}

// NewHandler returns a Handler publishing through js on nc. It fails unless o is valid
// (Options.Validate) with a ReceiverID. It logs to log (nothing when nil) and registers its
// metrics with reg (a registry of its own when nil), the stream's series included; run
// WatchStream to keep those current and readiness right about a full stream.
func NewHandler(nc *nats.Conn, js jetstream.JetStream, o Options, log *slog.Logger, reg prometheus.Registerer) (*Handler, error) {
	if o.ReceiverID == "" {
		return nil, errors.New("collector: empty receiver id")
	}
	if err := o.Validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	h := &Handler{nc: nc, js: js, o: o, auth: newCredential(o.BasicAuth), log: log,
		limits: sora.Limits{MaxElements: o.MaxElements, MaxMembers: o.MaxMembers, MaxIDBytes: o.MaxIDBytes}}
	h.m = newMetrics(reg, h)
	h.stream = stream.NewMonitor(js, stream.MonitorOptions{}, log, reg)
	h.mux = http.NewServeMux()
	h.mux.HandleFunc("POST "+collectorPath, h.ingest(&exporterRoute))
	h.mux.HandleFunc("POST "+o.WebhookPath, h.ingest(&webhookRoute))
	h.mux.HandleFunc("GET "+okPath, h.ok)
	return h, nil
}

// ServeHTTP routes POST /collector (the stats exporter, exporter types only) and POST on the
// webhook path (the stats webhook, connection.rtc) to the ingest path, which answers 204
// only after JetStream acknowledged the body, and GET /.ok to the readiness check; other
// paths are 404 and other methods 405.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) { h.mux.ServeHTTP(w, r) }

// ingest returns the handler of an ingest route, which answers and counts each request.
func (h *Handler) ingest(rt *route) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		h.m.inFlight.Inc()
		defer h.m.inFlight.Dec()
		b := trackBody(r)
		typ, status, err := h.answer(w, r, rt, b)
		label := typeLabel(typ)
		tm := h.m.forLabel(label)
		switch {
		case status == http.StatusNoContent && tm.noContent != nil:
			tm.noContent.Inc()
		case err != nil && clientGone(r, b):
			// No answer reached the client: counted apart from the answers, so that a
			// flood of resets does not read as bad requests.
			h.m.requests.WithLabelValues(label, codeClientClosed).Inc()
		default:
			h.m.requests.WithLabelValues(label, strconv.Itoa(status)).Inc()
		}
		tm.duration.Observe(time.Since(start).Seconds())
		linger(w, r, b)
	}
}

// answer accepts the request's body and writes the answer, 204 or one from writeError,
// after reading what is left of the body of a refused request (discard). It returns the
// request's type as far as the route accepted it ("" otherwise), the status and the
// failure, if any.
func (h *Handler) answer(w http.ResponseWriter, r *http.Request, rt *route, b *requestBody) (string, int, error) {
	typ, err := h.accept(w, r, rt, b)
	if err != nil {
		h.discard(w, r, b)
		status := writeError(w, err, h.o.RetryAfter)
		h.logFailure(r, typ, status, err)
		return typ, status, err
	}
	w.WriteHeader(http.StatusNoContent)
	return typ, http.StatusNoContent, nil
}

// codeClientClosed is the code label of a request that failed because its client went
// away before the answer: it reset the HTTP/2 stream or closed the connection.
const codeClientClosed = "client_closed"

// clientGone reports whether a failed request failed because its client went away: its
// context ends when an HTTP/2 client resets the stream or any connection closes while the
// handler runs, and an HTTP/1 body ends early when the connection closes mid-body.
func clientGone(r *http.Request, b *requestBody) bool {
	return r.Context().Err() != nil || errors.Is(b.err, io.ErrUnexpectedEOF)
}

// accept takes one request's body into the stream: it authorizes the request, settles the
// body's type, reads the body, validates it and publishes it, waiting for the PubAck. The
// route's header names the type; without it, on a route whose body names its type, the
// body does. It returns the type once the route accepted it, "" before.
func (h *Handler) accept(w http.ResponseWriter, r *http.Request, rt *route, b *requestBody) (string, error) {
	typ, inHeader := rt.headerType(r)
	// Credentials first: a client without them learns nothing else. A request refused
	// before its body is read has its body dropped unseen (discard), never kept or parsed.
	if err := h.authorize(r); err != nil {
		return typ, err
	}
	if err := checkContentType(r.Header.Get("Content-Type")); err != nil {
		return typ, err
	}
	if err := checkContentEncoding(r.Header.Values("Content-Encoding")); err != nil {
		return typ, err // before decoding anything: a small gzip body can decode to gigabytes
	}
	if typ == "" && (inHeader || rt.bodyType == nil) {
		return "", &typeError{field: rt.header, msg: rt.unknown} // before buffering a body nobody will store
	}
	buf := h.bodies.get()
	body, err := h.readBody(w, r, b, buf)
	if err != nil {
		h.bodies.put(buf)
		return typ, err
	}
	if typ == "" {
		typ, err = rt.bodyType(body)
	}
	h.m.forLabel(typeLabel(typ)).bodyBytes.Observe(float64(len(body)))
	if err != nil {
		h.bodies.put(buf)
		return "", err
	}
	// Validate also checks that the body's type is typ.
	if err := h.limits.Validate(typ, body); err != nil {
		h.bodies.put(buf)
		return typ, err
	}
	if err := h.publish(r.Context(), typ, body); err != nil {
		return typ, err // the NATS client may still hold the body: buf is left to the GC
	}
	h.bodies.put(buf)
	return typ, nil
}

// authorize returns nil when r carries the credential that h requires, if any, and
// otherwise counts the failure and returns its *authError.
func (h *Handler) authorize(r *http.Request) error {
	if err := h.auth.check(r); err != nil {
		h.m.authFailures[err.reason].Inc()
		return err
	}
	return nil
}

// checkContentType accepts a missing Content-Type, application/json and any +json type.
func checkContentType(ct string) error {
	if ct == "" || ct == "application/json" {
		return nil // the common cases, without parsing
	}
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		return errNotJSON
	}
	if mt == "application/json" || strings.HasSuffix(mt, "+json") {
		return nil
	}
	return errNotJSON
}

// checkContentEncoding accepts a body sent as it is: no Content-Encoding, or identity.
// The body is stored byte for byte, and the body limit and the validation apply to what
// is stored, so a compressed body would have to be decoded, within the limit, before
// anything else: it is refused instead.
func checkContentEncoding(values []string) error {
	for _, v := range values {
		for coding := range strings.SplitSeq(v, ",") {
			if coding = strings.TrimSpace(coding); coding != "" && !strings.EqualFold(coding, "identity") {
				return &encodingError{coding: coding}
			}
		}
	}
	return nil
}

// publish sends body to kohaku.stats.<typ> with the headers of DESIGN.md section 3 and
// waits for the PubAck, at most PublishTimeout.
func (h *Handler) publish(ctx context.Context, typ string, body []byte) error {
	if h.nc.Status() != nats.CONNECTED {
		// Fail fast instead of buffering for reconnect: the sender retries on 503.
		return &publishError{err: errNotConnected}
	}
	msg := stream.NewMsg(typ, body, time.Now(), h.o.ReceiverID)
	ctx, cancel := context.WithTimeout(ctx, h.o.PublishTimeout)
	defer cancel()
	start := time.Now()
	ack, err := h.js.PublishMsg(ctx, msg)
	h.m.publish.Observe(time.Since(start).Seconds())
	if err != nil {
		if stream.IsFull(err) {
			h.m.streamFull.Inc()
			h.stream.Refused(stream.StoredSize(msg)) // readiness fails until there is room
		}
		return &publishError{err: err}
	}
	if ack.Duplicate {
		h.m.forLabel(typ).dups.Inc()
		h.log.Debug("duplicate message", "exporter_type", typ, "stream_seq", ack.Sequence)
	}
	return nil
}

// logFailure logs client errors at Debug and dependency failures at Warn, except while
// NATS is known to be down (the connection's handler logged that once already), while the
// stream is full (the Monitor logs when it fills and when it has room again) and when the
// client itself went away.
func (h *Handler) logFailure(r *http.Request, typ string, status int, err error) {
	lvl := slog.LevelDebug
	if status == http.StatusServiceUnavailable && !errors.Is(err, errNotConnected) && !stream.IsFull(err) && r.Context().Err() == nil {
		lvl = slog.LevelWarn
	}
	h.log.Log(r.Context(), lvl, "request failed", "exporter_type", typeLabel(typ), "status", status, "err", err)
}

// ok answers Kohaku's GET /.ok: 204 when the receiver can publish now, 503 otherwise.
func (h *Handler) ok(w http.ResponseWriter, r *http.Request) {
	if err := h.Ready(r.Context()); err != nil {
		writeError(w, err, h.o.RetryAfter)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// Ready returns nil when the receiver can do its job now: it is not shutting down, NATS is
// connected, the stream exists and is not full. Full means that a publish was refused as
// full and no look at the stream since found room for that message (stream.Monitor; the
// looks come every 2s while full, from WatchStream): an error wrapping stream.ErrFull.
func (h *Handler) Ready(ctx context.Context) error {
	if h.draining.Load() {
		return errDraining
	}
	if !h.connected() {
		return fmt.Errorf("%w (%s)", errNotConnected, h.nc.Status())
	}
	if err := h.stream.Full(); err != nil {
		return err
	}
	if _, err := h.js.Stream(ctx, stream.Name); err != nil {
		return fmt.Errorf("look up stream %s: %w", stream.Name, err)
	}
	return nil
}

// WatchStream looks at the stream every few seconds until ctx ends, for the stream's series
// and for Ready to notice when a full stream has room again.
func (h *Handler) WatchStream(ctx context.Context) { h.stream.Run(ctx) }

// StartDrain marks the receiver as shutting down: Ready fails from now on, so that load
// balancers stop sending, while requests already accepted are still served.
func (h *Handler) StartDrain() { h.draining.Store(true) }

// bodyLimit returns the largest body accepted now: Options.MaxBodyBytes, capped by the
// connected NATS server's max payload less room for the headers.
func (h *Handler) bodyLimit() int64 {
	limit := h.o.MaxBodyBytes
	if mp := h.nc.MaxPayload(); mp > headerReserve {
		limit = min(limit, mp-headerReserve)
	}
	return limit
}

func (h *Handler) connected() bool { return h.nc.Status() == nats.CONNECTED }

func (h *Handler) reconnects() uint64 { return h.nc.Stats().Reconnects }
