package collector

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// TLSFiles name the receiver's TLS files: its certificate chain and private key (PEM), and
// the CA certificates that its clients' certificates must chain to, a PEM file or a
// directory whose every regular, non-hidden file is PEM. Without ClientCA, clients need no
// certificate.
type TLSFiles struct {
	CertFile, KeyFile, ClientCA string
}

// alpnProtocols returns the protocols that the receiver serves over TLS (NewServer), by
// preference. A handshake's configuration replaces the server's, so it names them itself.
func alpnProtocols() []string { return []string{"h2", "http/1.1"} }

// TLSReloader holds the receiver's certificate and client CAs as last read from their
// TLSFiles, and reads them again when they change (Watch) or when asked (Reload). Every
// handshake takes what was read last: new connections get a new certificate and CA pool
// at once, while established connections keep theirs. A new set of files that cannot be
// used (unparsable, a key that is not the certificate's, a CA file without certificates)
// leaves the last good one in place. It is safe for concurrent use.
type TLSReloader struct {
	files TLSFiles
	log   *slog.Logger
	cur   atomic.Pointer[tlsState]
	fails prometheus.Counter

	mu    sync.Mutex  // serializes reads of the files
	tried []fileStamp // the files as they were at the last read, good or bad
}

// tlsState is one reading of the files.
type tlsState struct {
	config *tls.Config // for a handshake
	leaf   *x509.Certificate
}

// NewTLSReloader reads files and returns a TLSReloader serving them; it fails when they
// cannot be used. It logs to log (nothing when nil) and registers its metrics with reg (a
// registry of its own when nil): kohaku_receiver_tls_reload_errors_total and
// kohaku_receiver_tls_certificate_expiry_seconds.
func NewTLSReloader(files TLSFiles, log *slog.Logger, reg prometheus.Registerer) (*TLSReloader, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	t := &TLSReloader{files: files, log: log}
	t.tried = files.stamps()
	st, err := files.load()
	if err != nil {
		return nil, err
	}
	t.cur.Store(st)
	f := promauto.With(reg)
	t.fails = f.NewCounter(prometheus.CounterOpts{
		Name: "kohaku_receiver_tls_reload_errors_total",
		Help: "Times the TLS files changed, or SIGHUP asked to read them, and they could not be used; the certificate in use stays.",
	})
	f.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "kohaku_receiver_tls_certificate_expiry_seconds",
		Help: "NotAfter of the certificate that new TLS connections get, in seconds since the epoch.",
	}, func() float64 { return float64(t.cur.Load().leaf.NotAfter.Unix()) })
	return t, nil
}

// Config returns the server configuration to serve with (ServerOptions.TLS): each
// handshake gets the certificate and client CAs read last.
func (t *TLSReloader) Config() *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		NextProtos: alpnProtocols(),
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
			return t.cur.Load().config, nil
		},
	}
}

// Reload reads the files now and serves them from the next handshake on; when they cannot
// be used, it keeps the certificate and CAs in use, and logs, counts and returns the error.
func (t *TLSReloader) Reload() error {
	return t.reload(t.files.stamps())
}

// Watch reads the files again when they change, looking every interval, and at once on
// every value from now (SIGHUP in the receiver), until ctx ends. A change is read once
// the files stayed the same for one interval, so that a certificate and key written one
// after the other are read together; files that could not be used are not read again
// until they change, so their error is logged and counted once.
func (t *TLSReloader) Watch(ctx context.Context, interval time.Duration, now <-chan os.Signal) {
	tick := time.NewTicker(interval)
	defer tick.Stop()
	var last []fileStamp // at the previous look
	for {
		select {
		case <-ctx.Done():
			return
		case <-now:
			t.Reload() // it logs its error
		case <-tick.C:
			s := t.files.stamps()
			t.mu.Lock()
			changed := !sameStamps(s, t.tried)
			t.mu.Unlock()
			if changed && sameStamps(s, last) {
				t.reload(s)
			}
			last = s
		}
	}
}

// reload reads the files, which were as stamps says just before, and serves them.
func (t *TLSReloader) reload(stamps []fileStamp) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.tried = stamps
	st, err := t.files.load()
	if err != nil {
		t.fails.Inc()
		t.log.Error("TLS files not reloaded, the certificate in use stays", "err", err,
			"serial", t.cur.Load().leaf.SerialNumber.String())
		return err
	}
	t.cur.Store(st)
	t.log.Info("TLS files reloaded", "cert_file", t.files.CertFile, "serial", st.leaf.SerialNumber.String(),
		"not_after", st.leaf.NotAfter, "client_ca", t.files.ClientCA)
	return nil
}

// load reads the files into the configuration of a handshake.
func (f TLSFiles) load() (*tlsState, error) {
	cert, err := tls.LoadX509KeyPair(f.CertFile, f.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("load TLS certificate %s and key %s: %w", f.CertFile, f.KeyFile, err)
	}
	leaf := cert.Leaf // set by LoadX509KeyPair
	if leaf == nil {
		if leaf, err = x509.ParseCertificate(cert.Certificate[0]); err != nil {
			return nil, fmt.Errorf("parse TLS certificate %s: %w", f.CertFile, err)
		}
	}
	cfg := &tls.Config{
		Certificates: []tls.Certificate{cert},
		MinVersion:   tls.VersionTLS12,
		NextProtos:   alpnProtocols(),
	}
	if f.ClientCA != "" {
		pool, err := loadClientCAs(f.ClientCA)
		if err != nil {
			return nil, err
		}
		// A resumed session is checked against this pool too (crypto/tls verifies its
		// chain again), so a CA taken out admits no one, also not by a session ticket.
		cfg.ClientCAs = pool
		cfg.ClientAuth = tls.RequireAndVerifyClientCert
	}
	return &tlsState{config: cfg, leaf: leaf}, nil
}

// fileStamp is what Watch compares to see that a file changed. A file replaced, by a
// rename or by swapping a symbolic link (cert-manager's and Kubernetes' secret volumes),
// is another file even when its size and time are the same.
type fileStamp struct {
	path string
	info os.FileInfo // nil when it cannot be read
}

// stamps returns the stamps of the files, following symbolic links: those of each file of
// a client CA directory.
func (f TLSFiles) stamps() []fileStamp {
	paths := []string{f.CertFile, f.KeyFile}
	if f.ClientCA != "" {
		paths = append(paths, f.ClientCA)
		if fi, err := os.Stat(f.ClientCA); err == nil && fi.IsDir() {
			files, _ := pemFiles(f.ClientCA) // an unreadable directory fails the load
			paths = append(paths, files...)
		}
	}
	out := make([]fileStamp, len(paths))
	for i, p := range paths {
		out[i].path = p
		out[i].info, _ = os.Stat(p)
	}
	return out
}

// sameStamps reports whether a and b stamp the same files, unchanged.
func sameStamps(a, b []fileStamp) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		x, y := a[i].info, b[i].info
		if a[i].path != b[i].path || (x == nil) != (y == nil) {
			return false
		}
		if x != nil && (!os.SameFile(x, y) || x.Size() != y.Size() || !x.ModTime().Equal(y.ModTime())) {
			return false
		}
	}
	return true
}

// loadClientCAs reads CA certificates from a PEM file or from every regular, non-hidden
// file of a directory. A file without any certificate is an error: it is more likely a
// mistake than something to ignore.
func loadClientCAs(path string) (*x509.CertPool, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("client CA: %w", err)
	}
	files := []string{path}
	if fi.IsDir() {
		files, err = pemFiles(path)
		if err != nil {
			return nil, err
		}
		if len(files) == 0 {
			return nil, fmt.Errorf("client CA: directory %s holds no files", path)
		}
	}
	pool := x509.NewCertPool()
	for _, f := range files {
		pem, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("client CA: %w", err)
		}
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("client CA: %s holds no PEM certificate", f)
		}
	}
	return pool, nil
}

// pemFiles lists the regular files of dir, following symbolic links (as Kubernetes mounts
// secrets) and skipping hidden names (its "..data" bookkeeping).
func pemFiles(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("client CA: %w", err)
	}
	var files []string
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".") {
			continue
		}
		p := filepath.Join(dir, e.Name())
		fi, err := os.Stat(p)
		if errors.Is(err, os.ErrNotExist) {
			continue // dangling link
		}
		if err != nil {
			return nil, fmt.Errorf("client CA: %w", err)
		}
		if fi.Mode().IsRegular() {
			files = append(files, p)
		}
	}
	return files, nil
}
