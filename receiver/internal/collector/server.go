package collector

import (
	"crypto/tls"
	"log"
	"log/slog"
	"net"
	"net/http"
	"time"
)

// ServerOptions harden the HTTP server against slow and abusive clients.
type ServerOptions struct {
	// TLS, when set, serves h2 (by ALPN) and HTTP/1.1 over TLS; when nil the server speaks
	// HTTP/1.1 and h2c with prior knowledge on the same port.
	TLS *tls.Config
	// ReadHeaderTimeout bounds reading a request's headers, ReadTimeout the whole request
	// with its body, WriteTimeout the time until the answer is written (it must exceed the
	// publish timeout), IdleTimeout a connection's wait for its next request.
	ReadHeaderTimeout time.Duration
	ReadTimeout       time.Duration
	WriteTimeout      time.Duration
	IdleTimeout       time.Duration
	// MaxHeaderBytes bounds a request's header size.
	MaxHeaderBytes int
	// MaxConcurrentStreams bounds the requests in flight on one HTTP/2 connection.
	MaxConcurrentStreams int
	// Log receives the server's own errors (handshake failures, bad frames) at Debug:
	// they are the clients' problem and can be many.
	Log *slog.Logger
}

// NewServer returns the HTTP server for h. Serve it with Serve.
func NewServer(h http.Handler, o ServerOptions) *http.Server {
	var p http.Protocols
	p.SetHTTP1(true)
	if o.TLS != nil {
		p.SetHTTP2(true)
	} else {
		// Sora's http:// collector URL means HTTP/2 with prior knowledge (h2c).
		p.SetUnencryptedHTTP2(true)
	}
	srv := &http.Server{
		Handler:           h,
		TLSConfig:         o.TLS,
		Protocols:         &p,
		ReadHeaderTimeout: o.ReadHeaderTimeout,
		ReadTimeout:       o.ReadTimeout,
		WriteTimeout:      o.WriteTimeout,
		IdleTimeout:       o.IdleTimeout,
		MaxHeaderBytes:    o.MaxHeaderBytes,
		HTTP2: &http.HTTP2Config{
			MaxConcurrentStreams: o.MaxConcurrentStreams,
			// Headers of a collector request are small; a big table only costs memory.
			MaxDecoderHeaderTableSize: 4096,
		},
	}
	if o.Log != nil {
		srv.ErrorLog = slog.NewLogLogger(o.Log.Handler(), slog.LevelDebug)
	} else {
		srv.ErrorLog = log.New(discard{}, "", 0)
	}
	return srv
}

// Serve serves srv on ln, over TLS when srv has a TLS configuration. Like
// http.Server.Serve it returns http.ErrServerClosed after Shutdown.
func Serve(srv *http.Server, ln net.Listener) error {
	if srv.TLSConfig != nil {
		// ServeTLS adds h2 and http/1.1 to the ALPN protocols from srv.Protocols.
		return srv.ServeTLS(ln, "", "")
	}
	return srv.Serve(ln)
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }
