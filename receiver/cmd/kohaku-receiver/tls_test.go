package main

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"kohaku/testsupport/testenv"
)

// pemSize is the size that selfSigned pads its PEM files to, with newlines, which PEM
// readers skip: files of the same size, which a change of content alone does not show.
const pemSize = 4096

// selfSigned returns a self-signed server certificate for 127.0.0.1 and its key, as PEM
// padded to pemSize, and the certificate.
func selfSigned(t *testing.T) (certPEM, keyPEM []byte, cert *x509.Certificate) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	sn, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 64))
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: sn,
		Subject:      pkix.Name{CommonName: "kohaku-receiver"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	if cert, err = x509.ParseCertificate(der); err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	pad := func(b []byte) []byte { return append(b, bytes.Repeat([]byte("\n"), pemSize-len(b))...) }
	return pad(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})),
		pad(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})), cert
}

// servedSerial returns the serial number of the certificate that addr presents to a new
// TLS connection trusting roots.
func servedSerial(addr string, roots *x509.CertPool) (*big.Int, error) {
	conn, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: roots})
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0].SerialNumber, nil
}

// TestSIGHUPReloadsTheCertificate rewrites the certificate and key files in place and puts
// their modification times back, so that the files look unchanged to the receiver's
// polling: SIGHUP alone makes new connections get the new certificate.
func TestSIGHUPReloadsTheCertificate(t *testing.T) {
	srv := testenv.NATS(t)
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	c1, k1, cert1 := selfSigned(t)
	c2, k2, cert2 := selfSigned(t)
	for f, b := range map[string][]byte{certFile: c1, keyFile: k1} {
		if err := os.WriteFile(f, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	p := startProcess(t, "KOHAKU_NATS_URL="+srv.URL(), "KOHAKU_TLS_CERT_FILE="+certFile, "KOHAKU_TLS_KEY_FILE="+keyFile)
	roots := x509.NewCertPool()
	roots.AddCert(cert1)
	roots.AddCert(cert2)
	if serial, err := servedSerial(p.addr, roots); err != nil || serial.Cmp(cert1.SerialNumber) != 0 {
		t.Fatalf("at start: serial %v (%v), want %v", serial, err, cert1.SerialNumber)
	}

	for f, b := range map[string][]byte{certFile: c2, keyFile: k2} {
		fi, err := os.Stat(f)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(f, b, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(f, fi.ModTime(), fi.ModTime()); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 20*time.Second, func() error {
		serial, err := servedSerial(p.addr, roots)
		if err == nil && serial.Cmp(cert2.SerialNumber) != 0 {
			err = fmt.Errorf("serial %v, want the new certificate's %v", serial, cert2.SerialNumber)
		}
		return err
	})
	_, metrics, err := p.adminGet("/metrics")
	if err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("kohaku_receiver_tls_certificate_expiry_seconds %g\n", float64(cert2.NotAfter.Unix()))
	if !strings.Contains(metrics, want) || !strings.Contains(metrics, "kohaku_receiver_tls_reload_errors_total 0\n") {
		t.Errorf("/metrics lacks %q or kohaku_receiver_tls_reload_errors_total 0", want)
	}
	if err := p.Stop(syscall.SIGTERM, 30*time.Second); err != nil {
		t.Errorf("exit after SIGTERM: %v", err)
	}
}

// TestSIGHUPWithoutTLSIsIgnored sends SIGHUP, which ends a program by default, to a
// receiver without TLS: it keeps running, and then stops cleanly on SIGTERM (signals
// pending together are delivered lowest number first, SIGHUP before SIGTERM).
func TestSIGHUPWithoutTLSIsIgnored(t *testing.T) {
	srv := testenv.NATS(t)
	p := startProcess(t, "KOHAKU_NATS_URL="+srv.URL())
	if err := p.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	p.waitReady()
	if err := p.Stop(syscall.SIGTERM, 30*time.Second); err != nil {
		t.Errorf("exit after SIGHUP and SIGTERM: %v", err)
	}
}
