package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/kelseyhightower/envconfig"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"kohaku/pkg/config"
	"kohaku/pkg/sora"
	"kohaku/pkg/stream"
	"kohaku/testsupport/fixtures"
	"kohaku/testsupport/proc"
	"kohaku/testsupport/testenv"
)

// receiverBin is kohaku-receiver, built once for the tests that run it as a process.
var receiverBin = &proc.Binary{Name: "kohaku-receiver", Pkg: ".", Race: raceEnabled}

func TestMain(m *testing.M) {
	code := m.Run()
	if err := receiverBin.Remove(); err != nil {
		fmt.Fprintln(os.Stderr, err)
	}
	os.Exit(code)
}

func TestHelpListsEveryVariable(t *testing.T) {
	out, err := exec.Command(receiverBin.Path(t), "-h").CombinedOutput()
	if err != nil {
		t.Fatalf("-h: %v\n%s", err, out)
	}
	for _, v := range []string{
		"KOHAKU_LISTEN", "KOHAKU_ADMIN_LISTEN", "KOHAKU_RECEIVER_ID", "KOHAKU_TLS_CERT_FILE", "KOHAKU_TLS_KEY_FILE",
		"KOHAKU_TLS_CLIENT_CA", "KOHAKU_MAX_BODY_BYTES", "KOHAKU_PUBLISH_TIMEOUT", "KOHAKU_RETRY_AFTER",
		"KOHAKU_MAX_CONCURRENT_STREAMS", "KOHAKU_NATS_URL", "KOHAKU_MANAGE_STREAM", "KOHAKU_STREAM_MAX_AGE",
		"KOHAKU_STREAM_MAX_BYTES", "KOHAKU_STREAM_DUPLICATES", "KOHAKU_STREAM_REPLICAS", "KOHAKU_LOG_FORMAT",
		"KOHAKU_STATS_WEBHOOK_PATH", "KOHAKU_BASIC_AUTH_USER", "KOHAKU_BASIC_AUTH_PASSWORD",
		"KOHAKU_BASIC_AUTH_PASSWORD_FILE", "/stats-webhook",
	} {
		if !bytes.Contains(out, []byte(v)) {
			t.Errorf("-h does not list %s", v)
		}
	}
	if !bytes.Contains(out, []byte(":5890")) || !bytes.Contains(out, []byte(":5891")) {
		t.Errorf("-h does not show the default ports:\n%s", out)
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name    string
		edit    func(*Config)
		wantErr string
	}{
		{"defaults", func(*Config) {}, ""},
		{"TLS", func(c *Config) { c.TLSCertFile, c.TLSKeyFile, c.TLSClientCA = "c.pem", "k.pem", "ca" }, ""},
		{"certificate without key", func(c *Config) { c.TLSCertFile = "c.pem" }, "KOHAKU_TLS_KEY_FILE"},
		{"client CA without TLS", func(c *Config) { c.TLSClientCA = "ca.pem" }, "KOHAKU_TLS_CLIENT_CA"},
		{"zero body limit", func(c *Config) { c.MaxBodyBytes = 0 }, "KOHAKU_MAX_BODY_BYTES"},
		{"write timeout under publish timeout", func(c *Config) { c.WriteTimeout = time.Second }, "KOHAKU_WRITE_TIMEOUT"},
		{"no concurrent streams", func(c *Config) { c.MaxConcurrentStreams = 0 }, "KOHAKU_MAX_CONCURRENT_STREAMS"},
		{"no retry after", func(c *Config) { c.RetryAfter = 0 }, "KOHAKU_RETRY_AFTER"},
		{"empty listen", func(c *Config) { c.Listen = "" }, "KOHAKU_LISTEN"},
		{"bad NATS settings", func(c *Config) { c.StreamReplicas = 0 }, "KOHAKU_STREAM_REPLICAS"},
		{"webhook path", func(c *Config) { c.WebhookPath = "/sora/stats" }, ""},
		{"relative webhook path", func(c *Config) { c.WebhookPath = "stats" }, "KOHAKU_STATS_WEBHOOK_PATH"},
		{"webhook path of /collector", func(c *Config) { c.WebhookPath = "/collector" }, "KOHAKU_STATS_WEBHOOK_PATH"},
		{"empty webhook path", func(c *Config) { c.WebhookPath = "" }, "KOHAKU_STATS_WEBHOOK_PATH"},
		{"basic auth", func(c *Config) { c.BasicAuthUser, c.BasicAuthPassword = "sora", "p" }, ""},
		{"basic auth with password file", func(c *Config) { c.BasicAuthUser, c.BasicAuthPasswordFile = "sora", "pw" }, ""},
		{"user without password", func(c *Config) { c.BasicAuthUser = "sora" }, "KOHAKU_BASIC_AUTH_PASSWORD"},
		{"password without user", func(c *Config) { c.BasicAuthPassword = "p" }, "KOHAKU_BASIC_AUTH_USER"},
		{"password file without user", func(c *Config) { c.BasicAuthPasswordFile = "pw" }, "KOHAKU_BASIC_AUTH_USER"},
		{"both password forms", func(c *Config) { c.BasicAuthUser, c.BasicAuthPassword, c.BasicAuthPasswordFile = "sora", "p", "pw" },
			"KOHAKU_BASIC_AUTH_PASSWORD_FILE"},
		{"user with a colon", func(c *Config) { c.BasicAuthUser, c.BasicAuthPassword = "so:ra", "p" }, "KOHAKU_BASIC_AUTH_USER"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var c Config
			if err := envconfig.Process(config.Prefix, &c); err != nil {
				t.Fatal(err)
			}
			tc.edit(&c)
			err := c.Validate()
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("got %v, want valid", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("got %v, want an error naming %s", err, tc.wantErr)
			}
		})
	}
}

func TestConfigBasicAuthReadsThePasswordFile(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	tests := []struct {
		name         string
		password     string
		passwordFile string
		want         string // "" wants no credential
		wantErr      string
	}{
		{name: "password", password: "s3cret", want: "s3cret"},
		{name: "file with a trailing newline", passwordFile: write("nl", "s3cret\n"), want: "s3cret"},
		{name: "file with CRLF", passwordFile: write("crlf", "s3cret\r\n"), want: "s3cret"},
		{name: "file without newline", passwordFile: write("plain", " s3cret "), want: " s3cret "},
		{name: "empty file", passwordFile: write("empty", "\n"), wantErr: "holds no password"},
		{name: "missing file", passwordFile: filepath.Join(dir, "absent"), wantErr: "KOHAKU_BASIC_AUTH_PASSWORD_FILE"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := Config{BasicAuthUser: "sora", BasicAuthPassword: tc.password, BasicAuthPasswordFile: tc.passwordFile}
			got, err := c.BasicAuth()
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("got %v, want an error containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got == nil || got.User != "sora" || got.Password != tc.want {
				t.Errorf("got %v, want user sora with password %q", got, tc.want)
			}
		})
	}
	if got, err := (&Config{}).BasicAuth(); got != nil || err != nil {
		t.Errorf("without a user: got %v, %v, want no credential", got, err)
	}
}

// process is a running kohaku-receiver.
type process struct {
	*proc.Process
	t     *testing.T
	addr  string // collector host:port
	admin string // admin host:port
}

// startProcess runs the binary on loopback ports with env added, and waits for its
// "listening" log line.
func startProcess(t *testing.T, env ...string) *process {
	t.Helper()
	cmd := exec.Command(receiverBin.Path(t))
	cmd.Env = append(os.Environ(),
		"KOHAKU_LISTEN=127.0.0.1:0", "KOHAKU_ADMIN_LISTEN=127.0.0.1:0", "KOHAKU_LOG_FORMAT=json",
		"KOHAKU_LOG_LEVEL=info", "KOHAKU_RECEIVER_ID=proc-test")
	cmd.Env = append(cmd.Env, env...)
	p := &process{Process: proc.Start(t, "kohaku-receiver", cmd), t: t}
	var l struct {
		Addr  string `json:"addr"`
		Admin string `json:"admin_addr"`
	}
	if err := p.WaitLog("listening", &l, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	p.addr, p.admin = l.Addr, l.Admin
	return p
}

// adminGet returns the status and body of an admin endpoint.
func (p *process) adminGet(path string) (int, string, error) {
	return proc.Get("http://" + p.admin + path)
}

func (p *process) waitReady() {
	p.t.Helper()
	if err := p.WaitHTTP("http://"+p.admin+"/readyz", 20*time.Second); err != nil {
		p.t.Fatal(err)
	}
}

// h2cClient speaks HTTP/2 with prior knowledge, as Sora does with an http:// URL.
func h2cClient(t *testing.T) *http.Client {
	tr := &http.Transport{Protocols: new(http.Protocols)}
	tr.Protocols.SetUnencryptedHTTP2(true)
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 30 * time.Second}
}

func (p *process) request(body io.Reader) *http.Request {
	req, err := http.NewRequest(http.MethodPost, "http://"+p.addr+"/collector", body)
	if err != nil {
		p.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(sora.HeaderExporterType, sora.TypeErlangVM)
	return req
}

// erlangBody returns the Erlang VM fixture with its id made from n.
func erlangBody(t *testing.T, n int) []byte {
	t.Helper()
	fx, err := fixtures.ByType(sora.TypeErlangVM)
	if err != nil || len(fx) == 0 {
		t.Fatalf("erlang fixture: %v", err)
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(fx[0].Body, &m); err != nil {
		t.Fatal(err)
	}
	m["id"] = json.RawMessage(fmt.Sprintf(`"%026d"`, n))
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// storedIDs returns the Nats-Msg-Id of every message in the stream.
func storedIDs(t *testing.T, url string) map[string]bool {
	t.Helper()
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := js.Stream(ctx, stream.Name)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	ids := map[string]bool{}
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
		m, err := s.GetMsg(ctx, seq)
		if err != nil {
			t.Fatalf("get message %d: %v", seq, err)
		}
		ids[m.Header.Get(stream.HeaderMsgID)] = true
	}
	return ids
}

func TestSIGTERMFinishesRequestsInFlight(t *testing.T) {
	srv := testenv.NATS(t)
	p := startProcess(t, "KOHAKU_NATS_URL="+srv.URL())
	p.waitReady()
	client := h2cClient(t)

	var (
		mu    sync.Mutex
		acked []string // Nats-Msg-Id of every body answered 204
		wg    sync.WaitGroup
	)
	ack := func(body []byte) {
		mu.Lock()
		acked = append(acked, stream.MsgID(sora.TypeErlangVM, body))
		mu.Unlock()
	}

	// Slow requests: headers and half a body sent before SIGTERM, the rest after it.
	const slow = 4
	finish := make(chan struct{})
	slowErrs := make(chan error, slow)
	for i := range slow {
		body := erlangBody(t, 1_000_000+i)
		pr, pw := io.Pipe()
		wg.Go(func() {
			pw.Write(body[:len(body)/2])
			<-finish
			pw.Write(body[len(body)/2:])
			pw.Close()
		})
		wg.Go(func() {
			resp, err := client.Do(p.request(pr))
			if err != nil {
				slowErrs <- err
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusNoContent {
				slowErrs <- fmt.Errorf("slow request answered %d", resp.StatusCode)
				return
			}
			ack(body)
		})
	}
	testenv.Eventually(t, 10*time.Second, func() error {
		_, m, err := p.adminGet("/metrics")
		if err == nil && !strings.Contains(m, fmt.Sprintf("kohaku_receiver_in_flight_requests %d\n", slow)) {
			err = errors.New("slow requests not in flight yet")
		}
		return err
	})

	// A flood of fast requests that runs into the shutdown.
	stopFlood := make(chan struct{})
	var sent int
	var sentMu sync.Mutex
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-stopFlood:
					return
				default:
				}
				sentMu.Lock()
				n := sent
				sent++
				sentMu.Unlock()
				body := erlangBody(t, n)
				resp, err := client.Do(p.request(bytes.NewReader(body)))
				if err != nil {
					return // the listener closed
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode == http.StatusNoContent {
					ack(body)
				}
			}
		})
	}
	testenv.Eventually(t, 10*time.Second, func() error { // SIGTERM must interrupt a running flood
		mu.Lock()
		defer mu.Unlock()
		if len(acked) < 20 {
			return fmt.Errorf("%d requests answered 204 so far", len(acked))
		}
		return nil
	})

	if err := p.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 10*time.Second, func() error {
		if !strings.Contains(p.Output(), `"msg":"shutting down"`) {
			return errors.New("no shutdown logged yet")
		}
		return nil
	})
	close(finish) // the slow requests finish their bodies during the shutdown
	exitErr := p.Wait(30 * time.Second)
	if errors.As(exitErr, new(*proc.TimeoutError)) {
		t.Fatal(exitErr)
	}
	close(stopFlood)
	wg.Wait()
	close(slowErrs)
	if exitErr != nil {
		t.Errorf("exit: %v", exitErr)
	}
	for err := range slowErrs {
		t.Errorf("request in flight at SIGTERM: %v", err)
	}

	stored := storedIDs(t, srv.URL())
	missing := 0
	for _, id := range acked {
		if !stored[id] {
			missing++
		}
	}
	t.Logf("%d requests sent, %d answered 204, %d messages stored", sent+slow, len(acked), len(stored))
	if missing > 0 {
		t.Errorf("%d of %d requests answered 204 are not in the stream", missing, len(acked))
	}
	if len(acked) < slow {
		t.Errorf("only %d requests answered 204", len(acked))
	}
	if !strings.Contains(p.Output(), `"msg":"stopped"`) {
		t.Error("no clean stop logged")
	}
	checkLogLines(t, p.Output())
}

// checkLogLines checks that every JSON log line names the service, that the shutdown line
// gives its durations as Go durations, not nanoseconds, and that nothing from the shutdown
// on is logged above INFO: a stop that goes as planned is no trouble.
func checkLogLines(t *testing.T, logs string) {
	t.Helper()
	stopping := false
	for line := range strings.Lines(logs) {
		var l struct {
			Msg     string `json:"msg"`
			Level   string `json:"level"`
			Service string `json:"service"`
			Timeout any    `json:"timeout"`
		}
		if err := json.Unmarshal([]byte(line), &l); err != nil {
			t.Errorf("log line is not JSON: %v: %s", err, line)
			continue
		}
		if l.Service != "kohaku-receiver" {
			t.Errorf("log line with service %q, want kohaku-receiver: %s", l.Service, line)
		}
		if l.Msg == "shutting down" {
			stopping = true
			if l.Timeout != "30s" {
				t.Errorf("shutting down with timeout %v, want \"30s\": %s", l.Timeout, line)
			}
		}
		if stopping && l.Level != "INFO" && l.Level != "DEBUG" {
			t.Errorf("logged at %s while stopping: %s", l.Level, line)
		}
	}
}

func TestVersionFlag(t *testing.T) {
	out, err := exec.Command(receiverBin.Path(t), "-version").CombinedOutput()
	if err != nil {
		t.Fatalf("-version: %v\n%s", err, out)
	}
	// The tests build without VCS stamping; pkg/logging tests the line with a commit.
	if !bytes.HasPrefix(out, []byte("kohaku-receiver version ")) || !bytes.Contains(out, []byte(", commit ")) ||
		bytes.Count(out, []byte("\n")) != 1 {
		t.Errorf("-version printed %q, want one line \"kohaku-receiver version ..., commit ...\"", out)
	}
}

func TestStartsBeforeNATSAndManagesTheStream(t *testing.T) {
	srv := testenv.NATS(t)
	srv.Shutdown() // the port is known; NATS comes later
	p := startProcess(t, "KOHAKU_NATS_URL=nats://"+srv.Addr(),
		"KOHAKU_STREAM_MAX_AGE=36h", "KOHAKU_STREAM_MAX_BYTES=1073741824", "KOHAKU_STREAM_DUPLICATES=90s")

	if code, _, err := p.adminGet("/healthz"); err != nil || code != http.StatusOK {
		t.Fatalf("/healthz without NATS: %d %v, want 200", code, err)
	}
	if code, body, _ := p.adminGet("/readyz"); code != http.StatusServiceUnavailable {
		t.Errorf("/readyz without NATS: %d %s, want 503", code, body)
	}
	client := h2cClient(t)
	resp, err := client.Do(p.request(bytes.NewReader(erlangBody(t, 1))))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Errorf("POST without NATS: %d Retry-After %q, want 503 with Retry-After", resp.StatusCode, resp.Header.Get("Retry-After"))
	}

	if err := srv.Restart(); err != nil {
		t.Fatal(err)
	}
	p.waitReady()
	resp, err = client.Do(p.request(bytes.NewReader(erlangBody(t, 2))))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Errorf("POST after NATS started: %d, want 204", resp.StatusCode)
	}

	nc, err := nats.Connect(srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	s, err := js.Stream(t.Context(), stream.Name)
	if err != nil {
		t.Fatal(err)
	}
	got := s.CachedInfo().Config
	want := stream.Config{MaxAge: 36 * time.Hour, MaxBytes: 1 << 30, Duplicates: 90 * time.Second, Replicas: 1}.StreamConfig()
	if got.MaxAge != want.MaxAge || got.MaxBytes != want.MaxBytes || got.Duplicates != want.Duplicates ||
		got.Storage != jetstream.FileStorage || got.Retention != jetstream.LimitsPolicy ||
		len(got.Subjects) != 1 || got.Subjects[0] != stream.Subjects {
		t.Errorf("stream config: got %+v, want %+v", got, want)
	}
}

func TestManageStreamFalseLeavesTheStreamAlone(t *testing.T) {
	srv := testenv.NATS(t)
	p := startProcess(t, "KOHAKU_NATS_URL="+srv.URL(), "KOHAKU_MANAGE_STREAM=false")
	// Connected, so a managed stream would exist by now; this one must not.
	testenv.Eventually(t, 10*time.Second, func() error {
		code, body, err := p.adminGet("/readyz")
		if err == nil && (code != http.StatusServiceUnavailable || !strings.Contains(body, "stream "+stream.Name)) {
			err = fmt.Errorf("/readyz: %d %q, want 503 naming the stream", code, body)
		}
		return err
	})
	if err := p.Stop(syscall.SIGTERM, 30*time.Second); err != nil {
		t.Errorf("exit after SIGTERM: %v", err)
	}
	nc, err := nats.Connect(srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	if _, err := js.Stream(t.Context(), stream.Name); !errors.Is(err, jetstream.ErrStreamNotFound) {
		t.Errorf("stream lookup: got %v, want not found", err)
	}
}

func TestWebhookWithBasicAuthFromPasswordFile(t *testing.T) {
	srv := testenv.NATS(t)
	const password = "correct horse: battery"
	pwFile := filepath.Join(t.TempDir(), "password")
	if err := os.WriteFile(pwFile, []byte(password+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	p := startProcess(t, "KOHAKU_NATS_URL="+srv.URL(), "KOHAKU_LOG_LEVEL=debug", "KOHAKU_STATS_WEBHOOK_PATH=/sora/webhook",
		"KOHAKU_BASIC_AUTH_USER=sora", "KOHAKU_BASIC_AUTH_PASSWORD_FILE="+pwFile)
	p.waitReady()
	fx, err := fixtures.Webhooks()
	if err != nil || len(fx) == 0 {
		t.Fatalf("webhook fixtures: %v", err)
	}
	body := fx[0].Body
	// Sora's stats webhook speaks HTTP/1.1.
	client := &http.Client{Timeout: 30 * time.Second}
	tests := []struct {
		name     string
		password string // "" sends no credential
		want     int
	}{
		{"no credential", "", http.StatusUnauthorized},
		{"wrong password", password + "\n", http.StatusUnauthorized},
		{"password of the file", password, http.StatusNoContent},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req, err := http.NewRequest(http.MethodPost, "http://"+p.addr+"/sora/webhook", bytes.NewReader(body))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set(sora.HeaderWebhookType, sora.TypeConnectionRTC)
			if tc.password != "" {
				req.SetBasicAuth("sora", tc.password)
			}
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.want {
				t.Errorf("got %d, want %d", resp.StatusCode, tc.want)
			}
		})
	}
	if ids := storedIDs(t, srv.URL()); len(ids) != 1 || !ids[stream.MsgID(sora.TypeConnectionRTC, body)] {
		t.Errorf("stream holds %v, want only the webhook body", ids)
	}
	_, metrics, err := p.adminGet("/metrics")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		`kohaku_receiver_auth_failures_total{reason="missing"} 1`,
		`kohaku_receiver_auth_failures_total{reason="wrong"} 1`,
		`kohaku_receiver_requests_total{code="401",exporter_type="connection.rtc"} 2`,
	} {
		if !strings.Contains(metrics, want+"\n") {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if logs := p.Output(); strings.Contains(logs, "battery") || !strings.Contains(logs, `"basic_auth":true`) {
		t.Errorf("the log must say basic_auth is on and never show the password:\n%s", logs)
	}
}

// The receiver sets Go's soft memory limit from KOHAKU_MEMORY_LIMIT, unless GOMEMLIMIT
// set one (the runtime applied it before main) or the variable is 0.
func TestMemoryLimit(t *testing.T) {
	before := debug.SetMemoryLimit(-1)
	t.Cleanup(func() { debug.SetMemoryLimit(before) })
	tests := []struct {
		name       string
		gomemlimit string
		limit      int64
		want       int64
	}{
		{"the variable's limit", "", 100 << 20, 100 << 20},
		{"zero leaves the runtime's", "", 0, 7 << 30},
		{"GOMEMLIMIT wins", "200MiB", 100 << 20, 7 << 30},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("GOMEMLIMIT", tt.gomemlimit)
			debug.SetMemoryLimit(7 << 30) // stands for what the runtime had
			memoryLimit(tt.limit, slog.New(slog.DiscardHandler))
			if got := debug.SetMemoryLimit(-1); got != tt.want {
				t.Errorf("memory limit %d, want %d", got, tt.want)
			}
		})
	}
}
