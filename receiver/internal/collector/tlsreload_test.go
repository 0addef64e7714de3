package collector_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"kohaku/pkg/sora"
	"kohaku/receiver/internal/collector"
	"kohaku/testsupport/testenv"
)

// tlsVersion is one set of the receiver's TLS files.
type tlsVersion struct {
	cert, key, clientCA []byte
	serial              *big.Int
	notAfter            time.Time
}

// newTLSVersion returns a server certificate from ca valid until notAfter, with clientCAs
// as the client CA file.
func newTLSVersion(t testing.TB, ca *testCA, notAfter time.Time, clientCAs ...*testCA) tlsVersion {
	t.Helper()
	c, k := ca.issueUntil(t, "kohaku-receiver", x509.ExtKeyUsageServerAuth, notAfter)
	v := tlsVersion{cert: c, key: k, notAfter: notAfter}
	cert, err := tls.X509KeyPair(c, k)
	if err != nil {
		t.Fatal(err)
	}
	v.serial = cert.Leaf.SerialNumber
	for _, ca := range clientCAs {
		v.clientCA = append(v.clientCA, ca.pem...)
	}
	return v
}

// tlsDir holds the receiver's TLS files, written in one of the ways that tools replace
// them.
type tlsDir struct {
	t     testing.TB
	dir   string
	n     int // versions written
	write func(d *tlsDir, v tlsVersion)
}

func (d *tlsDir) files() collector.TLSFiles {
	return collector.TLSFiles{
		CertFile: filepath.Join(d.dir, "tls.crt"),
		KeyFile:  filepath.Join(d.dir, "tls.key"),
		ClientCA: filepath.Join(d.dir, "ca.crt"),
	}
}

// names maps each file's name in the directory to its content in v.
func (v tlsVersion) names() map[string][]byte {
	return map[string][]byte{"tls.crt": v.cert, "tls.key": v.key, "ca.crt": v.clientCA}
}

// symlinkSwap writes v as Kubernetes updates a secret volume, which cert-manager fills: the
// files are links into ..data, itself a link to a hidden directory of the version, and a
// new version replaces ..data in one rename.
func symlinkSwap(d *tlsDir, v tlsVersion) {
	d.n++
	version := fmt.Sprintf("..v%d", d.n)
	must(d.t, os.Mkdir(filepath.Join(d.dir, version), 0o700))
	for name, b := range v.names() {
		writeFile(d.t, filepath.Join(d.dir, version, name), b)
	}
	tmp := filepath.Join(d.dir, "..data_tmp")
	must(d.t, os.Symlink(version, tmp))
	must(d.t, os.Rename(tmp, filepath.Join(d.dir, "..data")))
	if d.n == 1 {
		for name := range v.names() {
			must(d.t, os.Symlink(filepath.Join("..data", name), filepath.Join(d.dir, name)))
		}
	}
}

// renameOver writes each file of v beside its place and renames it there, one after the
// other, as most tools replace a file.
func renameOver(d *tlsDir, v tlsVersion) {
	for name, b := range v.names() {
		tmp := filepath.Join(d.dir, "."+name+".tmp")
		writeFile(d.t, tmp, b)
		must(d.t, os.Rename(tmp, filepath.Join(d.dir, name)))
	}
}

// rewriteInPlace truncates and writes each file of v, as a shell's > does.
func rewriteInPlace(d *tlsDir, v tlsVersion) {
	for name, b := range v.names() {
		writeFile(d.t, filepath.Join(d.dir, name), b)
	}
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// tlsClient returns a client that opens a new connection for every request, over h2 or
// HTTP/1.1, trusting roots and presenting the first of certs that the server's list of
// acceptable CAs names, as Go's client does.
func tlsClient(roots *x509.CertPool, http2 bool, certs ...tls.Certificate) *http.Client {
	tr := &http.Transport{
		TLSClientConfig:   &tls.Config{RootCAs: roots, Certificates: certs},
		DisableKeepAlives: true,
		Protocols:         new(http.Protocols),
	}
	if http2 {
		tr.Protocols.SetHTTP2(true)
	} else {
		tr.Protocols.SetHTTP1(true)
	}
	return &http.Client{Transport: tr, Timeout: 30 * time.Second}
}

// postTLS posts a user-agent report to r and returns the serial number of the certificate
// that the server presented, failing unless the answer is 204.
func postTLS(r *receiver, c *http.Client, body []byte) (*big.Int, error) {
	req, err := http.NewRequest(http.MethodPost, r.url+collector.CollectorPath, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(sora.HeaderExporterType, sora.TypeUserAgent)
	resp, err := c.Do(req)
	if err != nil {
		return nil, err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		return nil, fmt.Errorf("answered %d", resp.StatusCode)
	}
	return resp.TLS.PeerCertificates[0].SerialNumber, nil
}

// TestCertificateRotationUnderLoad replaces the receiver's certificate, issued by another
// CA, and its client CA while clients keep posting, each request on a new connection, over
// h2 and HTTP/1.1. No request fails; handshakes switch to the new certificate and CA;
// a connection opened before keeps its certificate.
func TestCertificateRotationUnderLoad(t *testing.T) {
	tests := []struct {
		name   string
		write  func(*tlsDir, tlsVersion)
		sighup bool // SIGHUP after writing; otherwise the files are polled
	}{
		{"symbolic link swap, polled", symlinkSwap, false},
		{"files renamed over, polled", renameOver, false},
		{"files rewritten in place, then SIGHUP", rewriteInPlace, true},
	}
	serverCA1, serverCA2 := newCA(t, "server CA 1"), newCA(t, "server CA 2")
	clientCA1, clientCA2 := newCA(t, "client CA 1"), newCA(t, "client CA 2")
	client1, client2 := clientCA1.clientCert(t), clientCA2.clientCert(t)
	roots := x509.NewCertPool()
	roots.AddCert(serverCA1.cert)
	roots.AddCert(serverCA2.cert)
	body := marshal(t, userAgent(), nil)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v1 := newTLSVersion(t, serverCA1, time.Now().Add(time.Hour), clientCA1)
			v2 := newTLSVersion(t, serverCA2, time.Now().Add(2*time.Hour), clientCA2)
			d := &tlsDir{t: t, dir: t.TempDir(), write: tc.write}
			d.write(d, v1)
			files := d.files()
			r := startReceiver(t, h2, func(s *setup) { s.tlsFiles = &files })
			hup := make(chan os.Signal, 1)
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			watched := make(chan struct{})
			interval := 50 * time.Millisecond
			if tc.sighup {
				interval = time.Hour // SIGHUP alone
			}
			go func() {
				defer close(watched)
				r.certs.Watch(ctx, interval, hup)
			}()
			defer func() { cancel(); <-watched }()

			// A connection kept open from before the rotation.
			kept := tlsClient(roots, true, client1)
			kept.Transport.(*http.Transport).DisableKeepAlives = false
			defer kept.CloseIdleConnections()
			if serial, err := postTLS(r, kept, body); err != nil || serial.Cmp(v1.serial) != 0 {
				t.Fatalf("before the rotation: serial %v, %v; want %v", serial, err, v1.serial)
			}

			var (
				sent, failed, late atomic.Int64
				switched           atomic.Bool // a handshake got the new certificate
				firstErr           atomic.Pointer[error]
				stop               = make(chan struct{})
				wg                 sync.WaitGroup
			)
			stopLoad := sync.OnceFunc(func() { close(stop); wg.Wait() })
			defer stopLoad() // also when the test fails first
			for w := range 4 {
				c := tlsClient(roots, w%2 == 0, client2, client1) // client2 once its CA is trusted
				wg.Go(func() {
					for {
						select {
						case <-stop:
							return
						default:
						}
						after := switched.Load() // this request's handshake comes later
						serial, err := postTLS(r, c, body)
						sent.Add(1)
						switch {
						case err != nil:
							failed.Add(1)
							firstErr.CompareAndSwap(nil, &err)
						case serial.Cmp(v2.serial) == 0:
							switched.Store(true)
						case after:
							late.Add(1) // the old certificate after a handshake got the new one
						}
					}
				})
			}
			waitSent := func(n int64) {
				t.Helper()
				testenv.Eventually(t, 30*time.Second, func() error {
					if s := sent.Load(); s < n {
						return fmt.Errorf("%d requests sent, waiting for %d", s, n)
					}
					return nil
				})
			}
			waitSent(20)
			d.write(d, v2)
			if tc.sighup {
				hup <- syscall.SIGHUP
			}
			testenv.Eventually(t, 30*time.Second, func() error {
				if !switched.Load() {
					return errors.New("no handshake got the new certificate yet")
				}
				return nil
			})
			waitSent(sent.Load() + 40)
			stopLoad()
			t.Logf("%d requests, %d failed", sent.Load(), failed.Load())
			if n := failed.Load(); n > 0 {
				t.Errorf("%d requests failed during the rotation; first: %v", n, *firstErr.Load())
			}
			if n := late.Load(); n > 0 {
				t.Errorf("%d handshakes got the old certificate after one got the new", n)
			}

			if serial, err := postTLS(r, kept, body); err != nil || serial.Cmp(v1.serial) != 0 {
				t.Errorf("connection opened before the rotation: serial %v, %v; want it to keep %v", serial, err, v1.serial)
			}
			if _, err := postTLS(r, tlsClient(roots, true, client1), body); err == nil {
				t.Error("a client certificate of the old client CA still accepted on a new connection")
			}
			for name, want := range map[string]float64{
				"kohaku_receiver_tls_reload_errors_total":        0,
				"kohaku_receiver_tls_certificate_expiry_seconds": float64(v2.notAfter.Unix()),
			} {
				if got := r.metric(name, nil); got != want {
					t.Errorf("%s: got %v, want %v", name, got, want)
				}
			}
		})
	}
}

// TestRemovedClientCAAdmitsNoResumedSession connects with a client certificate and a
// session cache, takes the certificate's CA out of the client CA file, and connects again:
// the session, which would be resumed otherwise, is not, and the client is refused.
func TestRemovedClientCAAdmitsNoResumedSession(t *testing.T) {
	serverCA, clientCA, otherCA := newCA(t, "server CA"), newCA(t, "client CA"), newCA(t, "other client CA")
	cert := clientCA.clientCert(t)
	for _, tc := range []struct {
		name    string
		version uint16
	}{
		{"TLS 1.3", tls.VersionTLS13},
		{"TLS 1.2", tls.VersionTLS12},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := &tlsDir{t: t, dir: t.TempDir()}
			rewriteInPlace(d, newTLSVersion(t, serverCA, time.Now().Add(time.Hour), clientCA))
			files := d.files()
			r := startReceiver(t, h2, func(s *setup) { s.tlsFiles = &files })
			client := tlsClient(serverCA.pool(), true, cert)
			tr := client.Transport.(*http.Transport)
			tr.TLSClientConfig.ClientSessionCache = tls.NewLRUClientSessionCache(4)
			tr.TLSClientConfig.MaxVersion = tc.version
			body := marshal(t, userAgent(), nil)
			post := func() (*http.Response, error) {
				req := r.request(sora.TypeUserAgent, bytes.NewReader(body))
				resp, err := client.Do(req)
				if err == nil {
					resp.Body.Close()
				}
				return resp, err
			}
			for i := range 2 {
				resp, err := post()
				if err != nil || resp.StatusCode != http.StatusNoContent {
					t.Fatalf("connection %d: %v", i, err)
				}
				if i == 1 && !resp.TLS.DidResume {
					t.Fatal("second connection not resumed: the test would show nothing")
				}
			}
			rewriteInPlace(d, newTLSVersion(t, serverCA, time.Now().Add(time.Hour), otherCA))
			if err := r.certs.Reload(); err != nil {
				t.Fatal(err)
			}
			if resp, err := post(); err == nil {
				t.Errorf("after the client CA was replaced: got %d (resumed %v), want the connection refused", resp.StatusCode, resp.TLS.DidResume)
			}
		})
	}
}

// TestBadTLSFilesKeepTheCertificateInUse writes files that cannot be used: the receiver
// keeps serving the certificate in use, counts and logs the error once however often it
// looks at the files, and takes the next good files.
func TestBadTLSFilesKeepTheCertificateInUse(t *testing.T) {
	serverCA, clientCA := newCA(t, "server CA"), newCA(t, "client CA")
	tests := []struct {
		name string
		edit func(v *tlsVersion, good tlsVersion)
	}{
		{"certificate not PEM", func(v *tlsVersion, _ tlsVersion) { v.cert = []byte("-----BEGIN CERTIFICATE-----\nnot base64\n") }},
		{"key of another certificate", func(v *tlsVersion, good tlsVersion) { v.key = good.key }},
		{"empty key", func(v *tlsVersion, _ tlsVersion) { v.key = nil }},
		{"client CA without a certificate", func(v *tlsVersion, _ tlsVersion) { v.clientCA = []byte("# no certificates yet\n") }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			logs := &recordedLogs{}
			good := newTLSVersion(t, serverCA, time.Now().Add(time.Hour), clientCA)
			d := &tlsDir{t: t, dir: t.TempDir()}
			symlinkSwap(d, good)
			files := d.files()
			r := startReceiver(t, h2, func(s *setup) { s.tlsFiles = &files; s.log = slog.New(logs) })
			ctx, cancel := context.WithCancel(t.Context())
			watched := make(chan struct{})
			go func() {
				defer close(watched)
				r.certs.Watch(ctx, 20*time.Millisecond, nil)
			}()
			defer func() { cancel(); <-watched }()
			roots := serverCA.pool()
			cert := clientCA.clientCert(t)
			body := marshal(t, userAgent(), nil)
			wantSerial := func(want *big.Int) {
				t.Helper()
				if serial, err := postTLS(r, tlsClient(roots, true, cert), body); err != nil || serial.Cmp(want) != 0 {
					t.Fatalf("serial %v (%v), want %v", serial, err, want)
				}
			}

			bad := newTLSVersion(t, serverCA, time.Now().Add(2*time.Hour), clientCA)
			tc.edit(&bad, good)
			symlinkSwap(d, bad)
			testenv.Eventually(t, 30*time.Second, func() error {
				if n := r.metric("kohaku_receiver_tls_reload_errors_total", nil); n != 1 {
					return fmt.Errorf("%v reload errors", n)
				}
				return nil
			})
			wantSerial(good.serial)
			if got, want := r.metric("kohaku_receiver_tls_certificate_expiry_seconds", nil), float64(good.notAfter.Unix()); got != want {
				t.Errorf("certificate expiry %v, want the certificate in use's %v", got, want)
			}

			next := newTLSVersion(t, serverCA, time.Now().Add(3*time.Hour), clientCA)
			symlinkSwap(d, next)
			testenv.Eventually(t, 30*time.Second, func() error {
				if got, want := r.metric("kohaku_receiver_tls_certificate_expiry_seconds", nil), float64(next.notAfter.Unix()); got != want {
					return fmt.Errorf("certificate expiry %v, want the next certificate's %v", got, want)
				}
				return nil
			})
			wantSerial(next.serial)
			// The bad files were in place for several looks, and were read once.
			if n := r.metric("kohaku_receiver_tls_reload_errors_total", nil); n != 1 {
				t.Errorf("%v reload errors, want 1", n)
			}
			if n := logs.count(slog.LevelError, "TLS"); n != 1 {
				t.Errorf("%d TLS errors logged, want 1", n)
			}

			// SIGHUP reads bad files again, and says so again.
			symlinkSwap(d, bad)
			if err := r.certs.Reload(); err == nil {
				t.Error("Reload of bad files: no error")
			}
			if n := r.metric("kohaku_receiver_tls_reload_errors_total", nil); n != 2 {
				t.Errorf("%v reload errors after Reload, want 2", n)
			}
			wantSerial(next.serial)
		})
	}
}

// recordedLogs is a slog.Handler that keeps every record's level and message.
type recordedLogs struct {
	mu      sync.Mutex
	records []slog.Record
}

func (l *recordedLogs) Enabled(context.Context, slog.Level) bool { return true }
func (l *recordedLogs) WithAttrs([]slog.Attr) slog.Handler       { return l }
func (l *recordedLogs) WithGroup(string) slog.Handler            { return l }

func (l *recordedLogs) Handle(_ context.Context, r slog.Record) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.records = append(l.records, r.Clone())
	return nil
}

// count returns the number of records at level whose message contains msg.
func (l *recordedLogs) count(level slog.Level, msg string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, r := range l.records {
		if r.Level == level && strings.Contains(r.Message, msg) {
			n++
		}
	}
	return n
}
