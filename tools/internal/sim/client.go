package sim

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"
)

// ClientOptions configures the client that posts reports.
type ClientOptions struct {
	CAFile   string        // PEM file of the CAs that sign the collector's certificate; empty: the system's
	CertFile string        // PEM client certificate for mTLS; with KeyFile
	KeyFile  string        // PEM private key of CertFile
	Insecure bool          // skip verifying the collector's certificate
	Timeout  time.Duration // limit of one request from dial to the end of the answer; 0: none
	// HTTP1 makes the client speak HTTP/1.1 only, over TLS for https://, as Sora's stats
	// webhook does; false: HTTP/2 only, as its stats exporter does.
	HTTP1 bool
	// BasicAuthUser, when not empty, sends HTTP Basic authentication with
	// BasicAuthPassword on every request, as Sora's webhook_basic_authn settings do.
	BasicAuthUser, BasicAuthPassword string
}

// NewClient returns a client that speaks one protocol, as Sora does. By default that is
// HTTP/2: over cleartext with prior knowledge (h2c) for an http:// collector URL, and over
// TLS negotiated with ALPN for https://. With o.HTTP1 it is HTTP/1.1, over TLS for
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
		// HTTP/1.1 carries one request at a time per connection: keep one connection per
		// request in flight instead of the default two, which would redial for most requests.
		MaxIdleConnsPerHost: 1024,
	}
	switch u.Scheme {
	case "http":
		if o.CAFile != "" || o.CertFile != "" || o.Insecure {
			return nil, fmt.Errorf("sim: TLS options given for the cleartext URL %s", collectorURL)
		}
		if o.HTTP1 {
			protocols.SetHTTP1(true)
		} else {
			protocols.SetUnencryptedHTTP2(true) // without HTTP1, http:// means h2c with prior knowledge
		}
	case "https":
		if o.HTTP1 {
			protocols.SetHTTP1(true) // ALPN offers http/1.1 only
		} else {
			protocols.SetHTTP2(true)
		}
		if tr.TLSClientConfig, err = tlsConfig(o); err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("sim: collector URL %q: scheme must be http or https", collectorURL)
	}
	var rt http.RoundTripper = tr
	if o.BasicAuthUser != "" {
		rt = basicAuth{next: tr, user: o.BasicAuthUser, password: o.BasicAuthPassword}
	} else if o.BasicAuthPassword != "" {
		return nil, errors.New("sim: a Basic authentication password without a user")
	}
	return &http.Client{Transport: rt, Timeout: o.Timeout}, nil
}

// basicAuth adds HTTP Basic authentication to every request.
type basicAuth struct {
	next           http.RoundTripper
	user, password string
}

func (b basicAuth) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context()) // a RoundTripper must not change the caller's request
	r.SetBasicAuth(b.user, b.password)
	return b.next.RoundTrip(r)
}

// ParseBasicAuth splits "user:password" at its first colon, which RFC 7617 forbids in the
// user. The password may be empty and may hold colons; the user may not be empty.
func ParseBasicAuth(s string) (user, password string, err error) {
	user, password, ok := strings.Cut(s, ":")
	if !ok || user == "" {
		return "", "", errors.New("sim: Basic authentication: want user:password")
	}
	return user, password, nil
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
