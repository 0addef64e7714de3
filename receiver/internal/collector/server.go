package collector

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"
)

// ServerOptions harden the HTTP server against slow and abusive clients. The timeouts and
// MaxConcurrentStreams are part of the receiver's configuration, like Options.
type ServerOptions struct {
	// TLS, when set, serves h2 (by ALPN) and HTTP/1.1 over TLS; when nil the server speaks
	// HTTP/1.1 and h2c with prior knowledge on the same port. The receiver takes it from a
	// TLSReloader of its KOHAKU_TLS_* files.
	TLS *tls.Config `ignored:"true"`
	// ReadHeaderTimeout bounds reading a request's headers, over HTTP/2 as well (see
	// NewServer), ReadTimeout the whole request with its body, WriteTimeout the time until
	// the answer is written (it must exceed the publish timeout), IdleTimeout a
	// connection's wait for its next request.
	ReadHeaderTimeout time.Duration `split_words:"true" default:"5s" desc:"longest time to read a request's headers, also over HTTP/2, where a connection that sends nothing for half of it must answer a PING in the other half"`
	ReadTimeout       time.Duration `split_words:"true" default:"30s" desc:"longest time to read a whole request with its body"`
	WriteTimeout      time.Duration `split_words:"true" default:"30s" desc:"longest time from the end of the headers to the answer written; more than the publish timeout"`
	IdleTimeout       time.Duration `split_words:"true" default:"120s" desc:"how long an idle client connection is kept open"`
	// MaxConcurrentStreams bounds the requests in flight on one HTTP/2 connection.
	MaxConcurrentStreams int `split_words:"true" default:"250" desc:"requests in flight on one HTTP/2 connection"`
	// MaxHeaderBytes bounds a request's header size; zero means net/http's default. It is
	// no variable: the receiver sets it.
	MaxHeaderBytes int `ignored:"true"`
}

// Validate reports every invalid field of o, naming its variable. That WriteTimeout exceeds
// the publish timeout is the receiver's check, which knows both.
func (o ServerOptions) Validate() error {
	var errs []error
	if o.ReadHeaderTimeout <= 0 || o.ReadTimeout <= 0 || o.IdleTimeout <= 0 {
		errs = append(errs, errors.New("KOHAKU_READ_HEADER_TIMEOUT, KOHAKU_READ_TIMEOUT and KOHAKU_IDLE_TIMEOUT must be positive"))
	}
	if o.MaxConcurrentStreams < 1 {
		errs = append(errs, fmt.Errorf("KOHAKU_MAX_CONCURRENT_STREAMS must be positive, got %d", o.MaxConcurrentStreams))
	}
	return errors.Join(errs...)
}

// NewServer returns the HTTP server for h, trusting o to be valid. The server's own errors
// (handshake failures, bad frames) go to log at Debug, since they are the clients' problem
// and can be many; nowhere when log is nil. Serve it with Serve.
func NewServer(h http.Handler, o ServerOptions, log *slog.Logger) *http.Server {
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
			// Go's server applies ReadHeaderTimeout to HTTP/1 only: its HTTP/2 server
			// clears the connection's deadlines after the preface and reads a header
			// block, HEADERS and its CONTINUATION frames, as one frame with no deadline
			// but IdleTimeout (net/http's h2_bundle.go, serverConn.serve and
			// processHeaders). Within a header block a client may send nothing but
			// CONTINUATION frames (RFC 9113 section 6.10), so it cannot answer a PING:
			// a connection that sent no whole frame for half the header timeout is
			// pinged and closed when the answer has not come in the other half. A
			// client that dribbles its headers is cut within ReadHeaderTimeout, as over
			// HTTP/1; a live idle one answers a PING now and then.
			SendPingTimeout: o.ReadHeaderTimeout / 2,
			PingTimeout:     o.ReadHeaderTimeout / 2,
		},
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	srv.ErrorLog = slog.NewLogLogger(log.Handler(), slog.LevelDebug)
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
