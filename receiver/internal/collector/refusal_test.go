package collector_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"

	"kohaku/pkg/sora"
	"kohaku/receiver/internal/collector"
	"kohaku/testsupport/testenv"
)

// refusalLimit is the body limit of the refusal tests: small, so that bodies over it are
// cheap to send a thousand times.
const refusalLimit = 64 << 10

// refusal is a request that the receiver refuses, and the answer it must give.
type refusal struct {
	name     string
	webhook  bool   // to the webhook path; /collector otherwise
	typ      string // the type header
	auth     string // "" the right credential, "none" or "wrong"
	header   map[string]string
	size     int  // body bytes
	streamed bool // sent without Content-Length, as it comes
	// wantStatus and wantField are the answer: its status, and the field of its JSON body.
	wantStatus int
	wantField  string
}

// refusals are requests refused before or while their body is read, with bodies under,
// near and over the limit.
var refusals = []refusal{
	{name: "unknown exporter type", typ: "connection.sora", size: 300,
		wantStatus: 400, wantField: sora.HeaderExporterType},
	{name: "unknown exporter type, body near the limit", typ: "connection.sora", size: refusalLimit - 10, streamed: true,
		wantStatus: 400, wantField: sora.HeaderExporterType},
	{name: "unknown webhook type", webhook: true, typ: "connection.sora", size: 2000,
		wantStatus: 400, wantField: sora.HeaderWebhookType},
	{name: "no credential", webhook: true, typ: sora.TypeConnectionRTC, auth: "none", size: 1500,
		wantStatus: 401, wantField: "authorization"},
	{name: "wrong credential, body near the limit", typ: sora.TypeUserAgent, auth: "wrong", size: refusalLimit,
		wantStatus: 401, wantField: "authorization"},
	{name: "no credential, body over the limit", webhook: true, typ: sora.TypeConnectionRTC, auth: "none", size: 3 * refusalLimit, streamed: true,
		wantStatus: 401, wantField: "authorization"},
	{name: "content type not JSON", typ: sora.TypeUserAgent, header: map[string]string{"Content-Type": "text/plain"}, size: 800,
		wantStatus: 415, wantField: "content-type"},
	{name: "gzip", webhook: true, typ: sora.TypeConnectionRTC, header: map[string]string{"Content-Encoding": "gzip"}, size: 5000, streamed: true,
		wantStatus: 415, wantField: "content-encoding"},
	{name: "body over the limit while streaming", typ: sora.TypeUserAgent, size: refusalLimit + 1, streamed: true,
		wantStatus: 413, wantField: ""},
	{name: "webhook body over the limit while streaming", webhook: true, typ: sora.TypeConnectionRTC, size: 5 * refusalLimit, streamed: true,
		wantStatus: 413, wantField: ""},
	{name: "body announced over the limit", typ: sora.TypeUserAgent, size: 25 * refusalLimit,
		wantStatus: 413, wantField: ""},
	{name: "unknown type, body over the limit while streaming", typ: "connection.sora", size: 2 * refusalLimit, streamed: true,
		wantStatus: 400, wantField: sora.HeaderExporterType},
}

// refusalBody returns a JSON object of size bytes (at least 20).
func refusalBody(size int) []byte {
	const head, tail = `{"type":"x","pad":"`, `"}`
	return []byte(head + strings.Repeat("p", max(0, size-len(head)-len(tail))) + tail)
}

// request returns the refusal's request to r.
func (rf refusal) request(t testing.TB, r *receiver) *http.Request {
	t.Helper()
	body := refusalBody(rf.size)
	var rd io.Reader = bytes.NewReader(body)
	if rf.streamed {
		rd = struct{ io.Reader }{rd} // hides the length from the client
	}
	path, header := collector.CollectorPath, sora.HeaderExporterType
	if rf.webhook {
		path, header = r.hook, sora.HeaderWebhookType
	}
	req := r.requestTo(path, header, rf.typ, rd)
	switch rf.auth {
	case "":
		req.SetBasicAuth("sora", "s3cret: pass")
	case "wrong":
		req.SetBasicAuth("sora", "guess")
	}
	for k, v := range rf.header {
		req.Header.Set(k, v)
	}
	return req
}

// check returns an error unless an answer with status, content type and body is the
// refusal's: its status, and a JSON error naming the field.
func (rf refusal) check(status int, contentType string, body []byte) error {
	if status != rf.wantStatus {
		return fmt.Errorf("got %d %q, want %d", status, body, rf.wantStatus)
	}
	if contentType != "application/json" {
		return fmt.Errorf("%d with content type %q, want application/json", status, contentType)
	}
	var e sora.FieldError
	if err := json.Unmarshal(body, &e); err != nil || e.Msg == "" {
		return fmt.Errorf("%d with body %q, want a JSON error (%v)", status, body, err)
	}
	if e.Field != rf.wantField {
		return fmt.Errorf("%d naming field %q, want %q", status, e.Field, rf.wantField)
	}
	return nil
}

// sender sends one request and returns its answer's status, content type and body.
type sender func(ctx context.Context, req *http.Request) (int, string, []byte, error)

// goSender sends with r's Go client.
func goSender(r *receiver) sender {
	return func(ctx context.Context, req *http.Request) (int, string, []byte, error) {
		resp, err := r.client.Do(req.WithContext(ctx))
		if err != nil {
			return 0, "", nil, err
		}
		defer resp.Body.Close()
		if resp.ProtoMajor != r.mode.wantProto() {
			return 0, "", nil, fmt.Errorf("answered over HTTP/%d", resp.ProtoMajor)
		}
		b, err := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header.Get("Content-Type"), b, err
	}
}

// curlSender sends with curl over h2c, as `curl --http2-prior-knowledge` does from a
// shell: the body from standard input, with Content-Length when the request has one.
func curlSender(t testing.TB) sender {
	t.Helper()
	curl, err := exec.LookPath("curl")
	if err != nil {
		testenv.Unavailable(t, "curl", err)
	}
	return func(ctx context.Context, req *http.Request) (int, string, []byte, error) {
		args := []string{"--http2-prior-knowledge", "--silent", "--show-error", "--request", "POST",
			"--output", "-", "--write-out", "\n%{http_code} %{content_type} %{http_version}"}
		for k, vs := range req.Header {
			for _, v := range vs {
				args = append(args, "--header", k+": "+v)
			}
		}
		if req.ContentLength > 0 {
			args = append(args, "--data-binary", "@-") // read whole, sent with its length
		} else {
			args = append(args, "--upload-file", "-") // sent as read, without a length
		}
		cmd := exec.CommandContext(ctx, curl, append(args, req.URL.String())...)
		cmd.Stdin = req.Body
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			return 0, "", nil, fmt.Errorf("curl: %w: %s", err, bytes.TrimSpace(stderr.Bytes()))
		}
		i := bytes.LastIndexByte(out, '\n')
		info := strings.Fields(string(out[i+1:]))
		if len(info) != 3 {
			return 0, "", nil, fmt.Errorf("curl wrote %q", out[i+1:])
		}
		if info[2] != "2" {
			return 0, "", nil, fmt.Errorf("curl answered over HTTP/%s", info[2])
		}
		status, err := strconv.Atoi(info[0])
		return status, info[1], out[:i], err
	}
}

// TestEveryRefusalReachesTheClient sends a thousand refused requests with each client:
// curl over h2c, Go's HTTP/2 client over h2c and over TLS, and Go's HTTP/1.1 client. Each
// must get its status and JSON body, although the receiver refuses most of them before
// reading their body, and some bodies are larger than the limit: an answer followed by a
// stream reset was lost by curl one time in ten.
func TestEveryRefusalReachesTheClient(t *testing.T) {
	const requests = 1000
	clients := []struct {
		name    string
		mode    mode
		curl    bool
		workers int // requests in flight: curl's processes need the CPU, Go's clients mostly wait
	}{
		{"curl h2c", h2c, true, 4},
		{"go h2c", h2c, false, 16},
		{"go h2", h2, false, 16},
		{"go h1", h1, false, 16},
	}
	for _, c := range clients {
		t.Run(c.name, func(t *testing.T) {
			r := startReceiver(t, c.mode, withBasicAuth, func(s *setup) { s.opts.MaxBodyBytes = refusalLimit })
			send := goSender(r)
			if c.curl {
				send = curlSender(t)
			}
			var (
				mu     sync.Mutex
				failed = map[string]int{}
				first  = map[string]error{}
				next   = make(chan int)
				wg     sync.WaitGroup
			)
			for range c.workers {
				wg.Go(func() {
					for i := range next {
						rf := refusals[i%len(refusals)]
						status, ct, body, err := send(t.Context(), rf.request(t, r))
						if err == nil {
							err = rf.check(status, ct, body)
						}
						if err != nil {
							mu.Lock()
							if failed[rf.name]++; first[rf.name] == nil {
								first[rf.name] = fmt.Errorf("request %d: %w", i, err)
							}
							mu.Unlock()
						}
					}
				})
			}
			for i := range requests {
				next <- i
			}
			close(next)
			wg.Wait()
			for _, rf := range refusals {
				if n := failed[rf.name]; n > 0 {
					t.Errorf("%s: %d of about %d requests without their answer; first: %v", rf.name, n, requests/len(refusals), first[rf.name])
				}
			}
			// The receiver agrees: it counted every answer (before sending it), and no
			// client that went away first.
			var answered float64
			for _, typ := range []string{"unknown", sora.TypeUserAgent, sora.TypeConnectionRTC} {
				for _, code := range []string{"400", "401", "413", "415"} {
					answered += r.metric("kohaku_receiver_requests_total", map[string]string{"exporter_type": typ, "code": code})
				}
				if n := r.metric("kohaku_receiver_requests_total", map[string]string{"exporter_type": typ, "code": "client_closed"}); n != 0 {
					t.Errorf("%v requests of type %s counted as client_closed, want 0", n, typ)
				}
			}
			if answered != requests {
				t.Errorf("the receiver counted %v answers, want %d", answered, requests)
			}
			if n := r.msgs(); n != 0 {
				t.Errorf("stream holds %d messages, want none", n)
			}
		})
	}
}

// TestRefusalIsWhatAWaitingHTTP1ClientGets sends HTTP/1.1 requests with
// Expect: 100-continue that the receiver refuses before their body: the refusal comes
// instead of 100 Continue, so that the client never sends a body that nobody reads.
func TestRefusalIsWhatAWaitingHTTP1ClientGets(t *testing.T) {
	r := startReceiver(t, h1, withBasicAuth, func(s *setup) { s.opts.MaxBodyBytes = refusalLimit })
	auth := "Authorization: Basic " + base64.StdEncoding.EncodeToString([]byte("sora:s3cret: pass")) + "\r\n"
	tests := []struct {
		name       string
		header     string // header lines
		length     int
		wantStatus int
	}{
		{"no credential", sora.HeaderExporterType + ": " + sora.TypeUserAgent + "\r\n", 1000, http.StatusUnauthorized},
		{"unknown type", auth + sora.HeaderExporterType + ": connection.sora\r\n", 1000, http.StatusBadRequest},
		{"gzip", auth + sora.HeaderExporterType + ": " + sora.TypeUserAgent + "\r\nContent-Encoding: gzip\r\n", 1000, http.StatusUnsupportedMediaType},
		{"announced over the limit", auth + sora.HeaderExporterType + ": " + sora.TypeUserAgent + "\r\n", refusalLimit + 1, http.StatusRequestEntityTooLarge},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			conn, err := net.Dial("tcp", strings.TrimPrefix(r.url, "http://"))
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			head := fmt.Sprintf("POST /collector HTTP/1.1\r\nHost: kohaku\r\nContent-Type: application/json\r\n"+
				"Expect: 100-continue\r\nContent-Length: %d\r\n%s\r\n", tc.length, tc.header)
			if _, err := io.WriteString(conn, head); err != nil {
				t.Fatal(err)
			}
			resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, err := io.ReadAll(resp.Body)
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != tc.wantStatus || resp.Header.Get("Content-Type") != "application/json" {
				t.Fatalf("got %d %s %q, want %d with a JSON error before any body", resp.StatusCode, resp.Header.Get("Content-Type"), body, tc.wantStatus)
			}
		})
	}
}
