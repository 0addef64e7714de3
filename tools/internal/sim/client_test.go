package sim

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"kohaku/pkg/sora"
)

// arrival is what a test collector saw of one request.
type arrival struct {
	proto, exporterType, webhookType, contentType string
	tls, clientCert                               bool
	user, password                                string // of the Authorization header
	basicAuth                                     bool   // an Authorization header with Basic credentials came
	body                                          []byte
	validateErr                                   error // of the body against the type its header names
}

// collector is an httptest server that records requests and answers them with status.
type collector struct {
	srv      *httptest.Server
	arrivals chan arrival
}

// newCollector starts a server that serves HTTP/1.1 and h2c ("h2c", "h1"), or HTTP/1.1 and
// h2 over TLS ("h2", "h1-tls", "mtls"), so that the protocol that arrives is the client's
// choice; with mtls the caller sets the client CA that it requires.
func newCollector(t *testing.T, mode string, status int) *collector {
	t.Helper()
	c := &collector{arrivals: make(chan arrival, 1000)}
	c.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		a := arrival{proto: r.Proto, exporterType: r.Header.Get(sora.HeaderExporterType),
			webhookType: r.Header.Get(sora.HeaderWebhookType),
			contentType: r.Header.Get("content-type"), tls: r.TLS != nil, body: body}
		a.user, a.password, a.basicAuth = r.BasicAuth()
		if r.TLS != nil {
			a.clientCert = len(r.TLS.PeerCertificates) > 0
		}
		a.validateErr = sora.Validate(a.exporterType+a.webhookType, body)
		select {
		case c.arrivals <- a:
		default:
		}
		w.WriteHeader(status)
	}))
	switch mode {
	case "h2c", "h1":
		c.srv.Config.Protocols = new(http.Protocols)
		c.srv.Config.Protocols.SetHTTP1(true)
		c.srv.Config.Protocols.SetUnencryptedHTTP2(true)
		c.srv.Start()
	case "h2", "h1-tls", "mtls":
		c.srv.EnableHTTP2 = true
		c.srv.StartTLS()
	}
	t.Cleanup(c.srv.Close)
	return c
}

// writePEM writes PEM blocks to a file in dir and returns its path.
func writePEM(t *testing.T, dir, name string, blocks ...*pem.Block) string {
	t.Helper()
	var out []byte
	for _, b := range blocks {
		out = append(out, pem.EncodeToMemory(b)...)
	}
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, out, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// clientCertificate makes a self-signed client certificate and returns its PEM files and
// the pool that verifies it.
func clientCertificate(t *testing.T, dir string) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "sora"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return writePEM(t, dir, "client.pem", &pem.Block{Type: "CERTIFICATE", Bytes: der}),
		writePEM(t, dir, "client-key.pem", &pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), pool
}

func TestReportsArriveOverHTTP2(t *testing.T) {
	tests := []struct {
		name string
		mode string
	}{
		{"h2c with prior knowledge", "h2c"},
		{"h2 over TLS", "h2"},
		{"h2 over TLS with a client certificate", "mtls"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newCollector(t, tt.mode, http.StatusNoContent)
			var o ClientOptions
			if tt.mode != "h2c" {
				dir := t.TempDir()
				o.CAFile = writePEM(t, dir, "ca.pem", &pem.Block{Type: "CERTIFICATE", Bytes: c.srv.Certificate().Raw})
				if tt.mode == "mtls" {
					var pool *x509.CertPool
					o.CertFile, o.KeyFile, pool = clientCertificate(t, dir)
					c.srv.TLS.ClientAuth = tls.RequireAndVerifyClientCert
					c.srv.TLS.ClientCAs = pool
				}
			}
			client, err := NewClient(c.srv.URL+"/collector", o)
			if err != nil {
				t.Fatalf("NewClient: %v", err)
			}
			conns := newTestConnections(t, Options{Connections: 2, Channels: 1, Seed: 1})
			s := NewSender(client, FeedExporter, c.srv.URL+"/collector", 2)
			for i, j := range []job{
				{sora.TypeUserAgent, conns[0].Report(time.Now())},
				{sora.TypeErlangVM, NewNode(conns[0].t, 1).Report(time.Now())},
			} {
				s.post(t.Context(), j)
				a := <-c.arrivals
				if a.proto != "HTTP/2.0" {
					t.Errorf("request %d arrived over %s, want HTTP/2.0", i, a.proto)
				}
				if a.exporterType != j.typ || a.contentType != "application/json" {
					t.Errorf("request %d: %s %q, content-type %q; want %q, application/json",
						i, sora.HeaderExporterType, a.exporterType, a.contentType, j.typ)
				}
				if a.tls != (tt.mode != "h2c") || a.clientCert != (tt.mode == "mtls") {
					t.Errorf("request %d: TLS %t with client certificate %t, not what mode %s means", i, a.tls, a.clientCert, tt.mode)
				}
				if a.validateErr != nil {
					t.Errorf("request %d: body fails sora.Validate: %v", i, a.validateErr)
				}
			}
			if got := s.Totals(); got.NoContent != 2 || got.Failed() != 0 {
				t.Errorf("totals %+v, want 2 answered 204", got)
			}
		})
	}
}

func TestNewClientRejects(t *testing.T) {
	tests := []struct {
		name string
		url  string
		o    ClientOptions
	}{
		{"a URL without host", "http:///collector", ClientOptions{}},
		{"another scheme", "ftp://127.0.0.1/collector", ClientOptions{}},
		{"TLS options on a cleartext URL", "http://127.0.0.1:5890/collector", ClientOptions{Insecure: true}},
		{"a certificate without its key", "https://127.0.0.1:5890/collector", ClientOptions{CertFile: "c.pem"}},
		{"a password without a user", "http://127.0.0.1:5890/stats-webhook", ClientOptions{HTTP1: true, BasicAuthPassword: "secret"}},
		{"a missing CA file", "https://127.0.0.1:5890/collector", ClientOptions{CAFile: filepath.Join(t.TempDir(), "none.pem")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := NewClient(tt.url, tt.o); err == nil {
				t.Errorf("NewClient(%q, %+v) succeeded, want an error", tt.url, tt.o)
			}
		})
	}
}
