package sim

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"time"
)

// ClientOptions configures the HTTP/2 client that posts reports.
type ClientOptions struct {
	CAFile   string        // PEM file of the CAs that sign the collector's certificate; empty: the system's
	CertFile string        // PEM client certificate for mTLS; with KeyFile
	KeyFile  string        // PEM private key of CertFile
	Insecure bool          // skip verifying the collector's certificate
	Timeout  time.Duration // limit of one request from dial to the end of the answer; 0: none
}

// NewClient returns a client that speaks HTTP/2 only, as Sora does: over cleartext with
// prior knowledge (h2c) for an http:// collector URL, and over TLS negotiated with ALPN for
// https://. TLS options with an http:// URL are an error rather than silently unused.
func NewClient(collectorURL string, o ClientOptions) (*http.Client, error) {
	u, err := url.Parse(collectorURL)
	if err != nil {
		return nil, fmt.Errorf("sim: collector URL: %w", err)
	}
	if u.Host == "" {
		return nil, fmt.Errorf("sim: collector URL %q has no host", collectorURL)
	}
	if (o.CertFile == "") != (o.KeyFile == "") {
		return nil, errors.New("sim: the client certificate and its key go together")
	}
	var protocols http.Protocols
	// No proxy: h2c with prior knowledge cannot go through an HTTP proxy, and Sora uses none.
	tr := &http.Transport{
		Protocols:           &protocols,
		TLSHandshakeTimeout: 10 * time.Second,
		IdleConnTimeout:     90 * time.Second,
	}
	switch u.Scheme {
	case "http":
		if o.CAFile != "" || o.CertFile != "" || o.Insecure {
			return nil, fmt.Errorf("sim: TLS options given for the cleartext URL %s", collectorURL)
		}
		protocols.SetUnencryptedHTTP2(true) // without HTTP1, http:// means h2c with prior knowledge
	case "https":
		protocols.SetHTTP2(true)
		if tr.TLSClientConfig, err = tlsConfig(o); err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("sim: collector URL %q: scheme must be http or https", collectorURL)
	}
	return &http.Client{Transport: tr, Timeout: o.Timeout}, nil
}

func tlsConfig(o ClientOptions) (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: o.Insecure} // only on request, for test set-ups
	if o.CAFile != "" {
		pem, err := os.ReadFile(o.CAFile)
		if err != nil {
			return nil, fmt.Errorf("sim: read CA file: %w", err)
		}
		cfg.RootCAs = x509.NewCertPool()
		if !cfg.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("sim: CA file %s holds no PEM certificate", o.CAFile)
		}
	}
	if o.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(o.CertFile, o.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("sim: load client certificate: %w", err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return cfg, nil
}
