package collector_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"kohaku/pkg/config"
	"kohaku/pkg/sora"
	"kohaku/pkg/stream"
	"kohaku/receiver/internal/collector"
	"kohaku/testsupport/fixtures"
	"kohaku/testsupport/testenv"
)

// mode is how a test talks to the receiver, like net/http's run(t, mode).
type mode string

const (
	h1  mode = "h1"  // HTTP/1.1 over TCP
	h2c mode = "h2c" // HTTP/2 with prior knowledge over TCP: Sora's http:// URL
	h2  mode = "h2"  // HTTP/2 over TLS chosen by ALPN: Sora's https:// URL
)

var modes = []mode{h1, h2c, h2}

// run calls f once per mode in a subtest.
func run(t *testing.T, f func(t *testing.T, m mode)) {
	for _, m := range modes {
		t.Run(string(m), func(t *testing.T) { f(t, m) })
	}
}

// setup is what a test may change before startReceiver starts things.
type setup struct {
	opts       collector.Options
	server     collector.ServerOptions
	natsURL    string // empty: an embedded JetStream for this test
	stream     stream.Config
	noStream   bool // do not create the stream
	clientCA   *testCA
	clientCert *tls.Certificate
	// tlsFiles, in mode h2, are served instead of a certificate of the harness's own; the
	// test then sets what the client trusts.
	tlsFiles *collector.TLSFiles
	log      *slog.Logger // nil: testLogger()
}

// receiver is a running receiver on a real loopback socket with its own JetStream.
type receiver struct {
	t      testing.TB
	mode   mode
	nats   *testenv.NATSServer // nil against the system NATS
	nc     *nats.Conn
	js     jetstream.JetStream
	h      *collector.Handler
	srv    *http.Server
	reg    *prometheus.Registry
	url    string // base URL, no trailing slash
	hook   string // the webhook path
	client *http.Client
	tr     *http.Transport
	certs  *collector.TLSReloader // in mode h2
}

func startReceiver(t testing.TB, m mode, edits ...func(*setup)) *receiver {
	t.Helper()
	s := setup{
		opts: collector.Options{
			ReceiverID:     "receiver-test",
			MaxBodyBytes:   4 << 20,
			PublishTimeout: 10 * time.Second, // generous: a loaded CI machine is slow, not broken
			RetryAfter:     3 * time.Second,
		},
		server: collector.ServerOptions{
			ReadHeaderTimeout:    5 * time.Second,
			ReadTimeout:          30 * time.Second,
			WriteTimeout:         30 * time.Second,
			IdleTimeout:          30 * time.Second,
			MaxHeaderBytes:       64 << 10,
			MaxConcurrentStreams: 250,
		},
		stream: stream.DefaultConfig(),
	}
	for _, e := range edits {
		e(&s)
	}
	// What the test left zero takes the receiver's default, as with an unset variable.
	if err := config.Defaults(&s.opts); err != nil {
		t.Fatal(err)
	}
	r := &receiver{t: t, mode: m, reg: prometheus.NewRegistry(), hook: s.opts.WebhookPath}
	if s.natsURL == "" {
		r.nats = testenv.NATS(t)
		s.natsURL = r.nats.URL()
	}
	log := s.log
	if log == nil {
		log = testLogger()
	}
	var err error
	r.nc, err = stream.Connect(s.natsURL, "receiver-test", log, stream.RetryOnFailedConnect())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.nc.Close)
	if r.js, err = jetstream.New(r.nc); err != nil {
		t.Fatal(err)
	}
	if !s.noStream {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if _, err := stream.EnsureRetry(ctx, r.js, s.stream, nil); err != nil {
			t.Fatalf("ensure stream: %v", err)
		}
	}
	if r.h, err = collector.NewHandler(r.nc, r.js, s.opts, log, r.reg); err != nil {
		t.Fatal(err)
	}

	r.tr = &http.Transport{MaxIdleConnsPerHost: 16}
	r.tr.Protocols = new(http.Protocols)
	scheme := "http"
	switch m {
	case h1:
		r.tr.Protocols.SetHTTP1(true)
	case h2c:
		r.tr.Protocols.SetUnencryptedHTTP2(true)
	case h2:
		scheme = "https"
		ca := newCA(t, "kohaku test CA")
		files := s.tlsFiles
		if files == nil {
			files = new(collector.TLSFiles)
			files.CertFile, files.KeyFile = ca.serverFiles(t, t.TempDir())
			if s.clientCA != nil {
				files.ClientCA = t.TempDir() + "/client-ca.pem"
				writeFile(t, files.ClientCA, s.clientCA.pem)
			}
		}
		if r.certs, err = collector.NewTLSReloader(*files, log, r.reg); err != nil {
			t.Fatal(err)
		}
		s.server.TLS = r.certs.Config()
		r.tr.TLSClientConfig = &tls.Config{RootCAs: ca.pool()}
		if s.clientCert != nil {
			// Always present it: with Certificates, Go's client would withhold a certificate
			// that the server's list of acceptable CAs does not name.
			cert := s.clientCert
			r.tr.TLSClientConfig.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
				return cert, nil
			}
		}
		r.tr.Protocols.SetHTTP2(true)
	}
	r.client = &http.Client{Transport: r.tr, Timeout: 30 * time.Second}

	r.srv = collector.NewServer(r.h, s.server, nil)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r.url = scheme + "://" + ln.Addr().String()
	served := make(chan error, 1)
	go func() { served <- collector.Serve(r.srv, ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := r.srv.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		if err := <-served; !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("serve: %v", err)
		}
	})
	// Cleanups run last first: the client hangs up before the server shuts down, which
	// otherwise waits a second for HTTP/2 clients to leave after its GOAWAY.
	t.Cleanup(r.tr.CloseIdleConnections)
	return r
}

// testLogger logs to stderr at Debug when KOHAKU_TEST_LOG is set, and nowhere otherwise.
// Not to t.Log: NATS callbacks log from their own goroutine, also after a test ended.
func testLogger() *slog.Logger {
	if os.Getenv("KOHAKU_TEST_LOG") == "" {
		return slog.New(slog.DiscardHandler)
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// answer is a response with its body read.
type answer struct {
	status     int
	proto      int
	header     http.Header
	body       []byte
	errorField string // of a JSON error body
	errorMsg   string
}

// post sends body to /collector as Sora does, with the exporter type header when typ is
// not empty.
func (r *receiver) post(typ string, body []byte) answer {
	r.t.Helper()
	req := r.request(typ, bytes.NewReader(body))
	return r.do(req)
}

// postWebhook sends body to the stats webhook as Sora does, with the webhook type header
// when typ is not empty.
func (r *receiver) postWebhook(typ string, body []byte) answer {
	r.t.Helper()
	return r.do(r.webhookRequest(typ, bytes.NewReader(body)))
}

// request returns a POST to /collector.
func (r *receiver) request(typ string, body io.Reader) *http.Request {
	r.t.Helper()
	return r.requestTo(collector.CollectorPath, sora.HeaderExporterType, typ, body)
}

// webhookRequest returns a POST to the webhook path.
func (r *receiver) webhookRequest(typ string, body io.Reader) *http.Request {
	r.t.Helper()
	return r.requestTo(r.hook, sora.HeaderWebhookType, typ, body)
}

// requestTo returns a JSON POST to path with header set to typ when typ is not empty.
func (r *receiver) requestTo(path, header, typ string, body io.Reader) *http.Request {
	r.t.Helper()
	req, err := http.NewRequest(http.MethodPost, r.url+path, body)
	if err != nil {
		r.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if typ != "" {
		req.Header.Set(header, typ)
	}
	return req
}

func (r *receiver) do(req *http.Request) answer {
	r.t.Helper()
	a, err := r.try(req)
	if err != nil {
		r.t.Fatalf("%s %s: %v", req.Method, req.URL.Path, err)
	}
	return a
}

func (r *receiver) try(req *http.Request) (answer, error) {
	resp, err := r.client.Do(req)
	if err != nil {
		return answer{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return answer{}, fmt.Errorf("read answer: %w", err)
	}
	a := answer{status: resp.StatusCode, proto: resp.ProtoMajor, header: resp.Header, body: b}
	if resp.StatusCode >= 400 && resp.Header.Get("Content-Type") == "application/json" {
		var e sora.FieldError
		if err := json.Unmarshal(b, &e); err != nil {
			return a, fmt.Errorf("error body %q is not JSON: %w", b, err)
		}
		a.errorField, a.errorMsg = e.Field, e.Msg
	}
	return a, nil
}

// wantProto is the HTTP major version that a mode must negotiate.
func (m mode) wantProto() int {
	if m == h1 {
		return 1
	}
	return 2
}

// kohaku returns the stream.
func (r *receiver) kohaku() jetstream.Stream {
	r.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s, err := r.js.Stream(ctx, stream.Name)
	if err != nil {
		r.t.Fatalf("stream %s: %v", stream.Name, err)
	}
	return s
}

// msgs returns the number of messages in the stream.
func (r *receiver) msgs() uint64 {
	r.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	info, err := r.kohaku().Info(ctx)
	if err != nil {
		r.t.Fatalf("stream info: %v", err)
	}
	return info.State.Msgs
}

// find returns the stored message with a Nats-Msg-Id, searching back from the newest, so
// that it works on a stream that others publish to as well.
func (r *receiver) find(msgID string) *jetstream.RawStreamMsg {
	r.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s := r.kohaku()
	info, err := s.Info(ctx)
	if err != nil {
		r.t.Fatalf("stream info: %v", err)
	}
	for seq := info.State.LastSeq; seq >= info.State.FirstSeq && seq > 0 && info.State.LastSeq-seq < 10000; seq-- {
		m, err := s.GetMsg(ctx, seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue
		}
		if err != nil {
			r.t.Fatalf("get message %d: %v", seq, err)
		}
		if m.Header.Get(stream.HeaderMsgID) == msgID {
			return m
		}
	}
	return nil
}

// metric returns the value of a counter or gauge with the given labels, 0 when absent.
func (r *receiver) metric(name string, labels map[string]string) float64 {
	r.t.Helper()
	mfs, err := r.reg.Gather()
	if err != nil {
		r.t.Fatalf("gather metrics: %v", err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if matchLabels(m, labels) {
				switch {
				case m.Counter != nil:
					return m.Counter.GetValue()
				case m.Gauge != nil:
					return m.Gauge.GetValue()
				case m.Histogram != nil:
					return float64(m.Histogram.GetSampleCount())
				}
			}
		}
	}
	return 0
}

func matchLabels(m *dto.Metric, want map[string]string) bool {
	n := 0
	for _, lp := range m.GetLabel() {
		if v, ok := want[lp.GetName()]; ok {
			if v != lp.GetValue() {
				return false
			}
			n++
		}
	}
	return n == len(want)
}

// allFixtures returns every captured request body; there is always at least one.
func allFixtures(t testing.TB) []fixtures.Fixture {
	t.Helper()
	all, err := fixtures.All()
	if err != nil {
		t.Fatal(err)
	}
	if len(all) == 0 {
		t.Fatal("no fixtures")
	}
	return all
}

// webhookFixtures returns every stats webhook body; there is always at least one.
func webhookFixtures(t testing.TB) []fixtures.Fixture {
	t.Helper()
	all, err := fixtures.Webhooks()
	if err != nil {
		t.Fatal(err)
	}
	if len(all) == 0 {
		t.Fatal("no webhook fixtures")
	}
	return all
}

// userAgent returns a valid connection.user-agent body as a map, to change and marshal.
func userAgent() map[string]any {
	return map[string]any{
		"type":          sora.TypeUserAgent,
		"id":            "01JDQ6G3RZ6M0V3F8X2K4N7P9B",
		"timestamp":     "2026-11-29T06:20:00.123456Z",
		"label":         "WebRTC SFU Sora",
		"version":       "2025.1.0",
		"node_name":     "sora@127.0.0.1",
		"multistream":   true,
		"simulcast":     false,
		"spotlight":     false,
		"role":          "sendrecv",
		"channel_id":    "sora-devtools",
		"client_id":     "client-1",
		"bundle_id":     "bundle-1",
		"session_id":    "01JDQ6G3S0AAAAAAAAAAAAAAAA",
		"connection_id": "01JDQ6G3S1BBBBBBBBBBBBBBBB",
		"stats": []any{
			map[string]any{"type": "codec", "id": "COT01_96", "timestamp": 1.7328e12, "mimeType": "video/VP8", "payloadType": 96},
			map[string]any{"type": "candidate-pair", "id": "CP1", "timestamp": 1.7328e12, "priority": 9.1145e18},
		},
	}
}

// connectionRTC returns a valid stats webhook body as a map, to change and marshal: the
// user-agent body as Sora 2025.2 sends it to the webhook, with group_id and no multistream.
func connectionRTC() map[string]any {
	m := userAgent()
	m["type"] = sora.TypeConnectionRTC
	m["group_id"] = "group-1"
	delete(m, "multistream")
	return m
}

// wantStored fails t unless the message that a 204 answered for body is on the stream,
// byte for byte, under the subject and with the headers of its type.
func (r *receiver) wantStored(t testing.TB, typ string, body []byte) {
	t.Helper()
	id := stream.MsgID(typ, body)
	msg := r.find(id) // no polling: the message must be there when 204 arrives
	if msg == nil {
		t.Fatalf("message %s not in the stream after 204", id)
	}
	if msg.Subject != stream.Subject(typ) {
		t.Errorf("subject: got %q, want %q", msg.Subject, stream.Subject(typ))
	}
	if !bytes.Equal(msg.Data, body) {
		t.Errorf("stored body differs from the request body (%d and %d bytes)", len(msg.Data), len(body))
	}
	for k, want := range map[string]string{
		stream.HeaderMsgID:        id,
		stream.HeaderExporterType: typ,
		stream.HeaderReceiver:     "receiver-test",
	} {
		if got := msg.Header.Get(k); got != want {
			t.Errorf("header %s: got %q, want %q", k, got, want)
		}
	}
	if _, err := time.Parse(time.RFC3339Nano, msg.Header.Get(stream.HeaderReceivedAt)); err != nil {
		t.Errorf("header %s: %v", stream.HeaderReceivedAt, err)
	}
}

// marshal returns m as JSON after applying edit.
func marshal(t testing.TB, m map[string]any, edit func(map[string]any)) []byte {
	t.Helper()
	if edit != nil {
		edit(m)
	}
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// uniqueBody returns a copy of a fixture body whose first "id" value is made from n, so
// that each copy has its own Nats-Msg-Id; the rest of the bytes stay as captured.
func uniqueBody(t testing.TB, body []byte, n int) []byte {
	t.Helper()
	const key = `"id":"`
	i := bytes.Index(body, []byte(key))
	if i < 0 {
		t.Fatalf("body has no %s", key)
	}
	start := i + len(key)
	end := bytes.IndexByte(body[start:], '"')
	if end < 0 {
		t.Fatal("unterminated id")
	}
	out := make([]byte, 0, len(body)+26)
	out = append(out, body[:start]...)
	out = fmt.Appendf(out, "%026d", n)
	return append(out, body[start+end:]...)
}

// wantError fails the test unless a is a JSON error body naming field, with a message that
// contains msg.
func wantError(t testing.TB, a answer, field, msg string) {
	t.Helper()
	if a.errorMsg == "" {
		t.Fatalf("got body %q, want a JSON error", a.body)
	}
	if a.errorField != field || !strings.Contains(a.errorMsg, msg) {
		t.Errorf("got field %q error %q, want field %q error containing %q", a.errorField, a.errorMsg, field, msg)
	}
}

// wantHealthy fails the test unless the receiver is still ready and answers /.ok with 204,
// and the stream holds no message: what bad requests must leave behind.
func (r *receiver) wantHealthy(t testing.TB) {
	t.Helper()
	if err := r.h.Ready(t.Context()); err != nil {
		t.Errorf("not ready after bad requests: %v", err)
	}
	if a := r.do(mustRequest(t, http.MethodGet, r.url+"/.ok")); a.status != http.StatusNoContent {
		t.Errorf("GET /.ok: got %d %s, want 204", a.status, a.body)
	}
	if n := r.msgs(); n != 0 {
		t.Errorf("stream holds %d messages after bad requests only, want 0", n)
	}
}
