package collector_test

import (
	"crypto/tls"
	"crypto/x509"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"kohaku/pkg/sora"
	"kohaku/receiver/internal/collector"
)

func TestMutualTLSRequiresACertificateFromTheClientCA(t *testing.T) {
	clientCA := newCA(t, "sora client CA")
	good := clientCA.clientCert(t)
	other := newCA(t, "another CA").clientCert(t)
	tests := []struct {
		name   string
		cert   *tls.Certificate
		wantOK bool
	}{
		{"certificate from the client CA", &good, true},
		{"no certificate", nil, false},
		{"certificate from another CA", &other, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := startReceiver(t, h2, func(s *setup) {
				s.clientCA = clientCA
				s.clientCert = tc.cert
			})
			body := marshal(t, userAgent(), nil)
			a, err := r.try(r.request(sora.TypeUserAgent, strings.NewReader(string(body))))
			if !tc.wantOK {
				if err == nil {
					t.Fatalf("got %d, want the TLS handshake refused", a.status)
				}
				// The HTTP client may report the refusal as a failed connection; a plain TLS
				// connection shows the server's alert.
				conf := r.tr.TLSClientConfig.Clone()
				conf.NextProtos = []string{"h2"}
				conn, err := tls.Dial("tcp", strings.TrimPrefix(r.url, "https://"), conf)
				if err == nil {
					_, err = conn.Read(make([]byte, 1))
					conn.Close()
				}
				if err == nil || !strings.Contains(err.Error(), "tls:") {
					t.Errorf("TLS connection: got %v, want a TLS alert", err)
				} else {
					t.Logf("refused: %v", err)
				}
				if n := r.msgs(); n != 0 {
					t.Errorf("stream holds %d messages, want 0", n)
				}
				return
			}
			if err != nil || a.status != http.StatusNoContent || a.proto != 2 {
				t.Fatalf("got %d over HTTP/%d (%v), want 204 over HTTP/2", a.status, a.proto, err)
			}
		})
	}
}

func TestLoadClientCAs(t *testing.T) {
	a, b := newCA(t, "a"), newCA(t, "b")
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "a.pem"), a.pem)
	writeFile(t, filepath.Join(dir, "b.crt"), b.pem)
	writeFile(t, filepath.Join(dir, ".hidden"), []byte("not a certificate"))
	if err := os.Mkdir(filepath.Join(dir, "..data"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(dir, "a.pem"), filepath.Join(dir, "link.pem")); err != nil {
		t.Fatal(err)
	}
	empty := t.TempDir()
	junkDir := t.TempDir()
	writeFile(t, filepath.Join(junkDir, "a.pem"), a.pem)
	writeFile(t, filepath.Join(junkDir, "README"), []byte("certificates go here"))

	tests := []struct {
		name    string
		path    string
		wantErr string
		trusts  []*testCA
	}{
		{name: "one file", path: filepath.Join(dir, "a.pem"), trusts: []*testCA{a}},
		{name: "directory", path: dir, trusts: []*testCA{a, b}},
		{name: "missing path", path: filepath.Join(dir, "nope"), wantErr: "no such file"},
		{name: "empty directory", path: empty, wantErr: "holds no files"},
		{name: "file without a certificate", path: junkDir, wantErr: "holds no PEM certificate"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			pool, err := collector.LoadClientCAs(tc.path)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("got error %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			for _, ca := range tc.trusts {
				leaf, err := x509.ParseCertificate(ca.clientCert(t).Certificate[0])
				if err != nil {
					t.Fatal(err)
				}
				opts := x509.VerifyOptions{Roots: pool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
				if _, err := leaf.Verify(opts); err != nil {
					t.Errorf("client certificate of %s not trusted: %v", ca.cert.Subject.CommonName, err)
				}
			}
			stranger, err := x509.ParseCertificate(newCA(t, "stranger").clientCert(t).Certificate[0])
			if err != nil {
				t.Fatal(err)
			}
			if _, err := stranger.Verify(x509.VerifyOptions{Roots: pool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err == nil {
				t.Error("client certificate of an unknown CA trusted")
			}
		})
	}
}

func TestNewTLSReloaderRefusesBadFiles(t *testing.T) {
	ca := newCA(t, "ca")
	dir := t.TempDir()
	cert, key := ca.serverFiles(t, dir)
	otherCert, _ := ca.serverFiles(t, t.TempDir())
	junk := filepath.Join(dir, "junk.pem")
	writeFile(t, junk, []byte("not PEM"))
	tests := []struct {
		name    string
		files   collector.TLSFiles
		wantErr string
	}{
		{"missing key", collector.TLSFiles{CertFile: cert, KeyFile: filepath.Join(dir, "missing-key.pem")}, "missing-key.pem"},
		{"key of another certificate", collector.TLSFiles{CertFile: otherCert, KeyFile: key}, "private key does not match"},
		{"certificate not PEM", collector.TLSFiles{CertFile: junk, KeyFile: key}, "junk.pem"},
		{"missing client CA", collector.TLSFiles{CertFile: cert, KeyFile: key, ClientCA: filepath.Join(dir, "missing-ca.pem")}, "client CA"},
		{"client CA without a certificate", collector.TLSFiles{CertFile: cert, KeyFile: key, ClientCA: junk}, "holds no PEM certificate"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := collector.NewTLSReloader(tc.files, nil, nil); err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("got %v, want an error containing %q", err, tc.wantErr)
			}
		})
	}
	certs, err := collector.NewTLSReloader(collector.TLSFiles{CertFile: cert, KeyFile: key}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := certs.Config().GetConfigForClient(&tls.ClientHelloInfo{})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.ClientAuth != tls.NoClientCert {
		t.Errorf("client auth without a client CA: got %v, want none", cfg.ClientAuth)
	}
}

func TestHTTP1OverTLS(t *testing.T) {
	r := startReceiver(t, h2)
	tr := &http.Transport{TLSClientConfig: r.tr.TLSClientConfig.Clone(), Protocols: new(http.Protocols)}
	tr.Protocols.SetHTTP1(true)
	defer tr.CloseIdleConnections()
	r.client = &http.Client{Transport: tr}
	a := r.post(sora.TypeUserAgent, marshal(t, userAgent(), nil))
	if a.status != http.StatusNoContent || a.proto != 1 {
		t.Fatalf("got %d over HTTP/%d, want 204 over HTTP/1.1", a.status, a.proto)
	}
}
