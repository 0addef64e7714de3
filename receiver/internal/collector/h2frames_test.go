package collector_test

// A raw HTTP/2 client, for the frames that Go's client never sends (a header block
// dribbled in CONTINUATION frames): RFC 9113 framing and the few HPACK representations of
// RFC 7541 it needs, written by hand, since the receiver's module takes no third-party
// HTTP/2 package.

import (
	"crypto/tls"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

// HTTP/2 frame types and flags (RFC 9113 section 6).
const (
	frameHeaders      = 0x1
	frameSettings     = 0x4
	framePing         = 0x6
	frameGoAway       = 0x7
	frameContinuation = 0x9

	flagEndStream  = 0x1
	flagAck        = 0x1
	flagEndHeaders = 0x4
)

// h2Preface is the client connection preface (RFC 9113 section 3.4).
const h2Preface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

// frame is one HTTP/2 frame.
type frame struct {
	typ, flags byte
	stream     uint32
	payload    []byte
}

// h2Conn is a raw HTTP/2 connection to a receiver, after the preface and the exchange of
// SETTINGS.
type h2Conn struct {
	t    testing.TB
	conn net.Conn
}

// dialH2 opens an HTTP/2 connection to r, in mode h2c or h2, sends the preface and an
// empty SETTINGS frame, and acknowledges the server's SETTINGS.
func dialH2(t testing.TB, r *receiver) *h2Conn {
	t.Helper()
	addr := r.url[strings.Index(r.url, "://")+3:]
	var conn net.Conn
	var err error
	switch r.mode {
	case h2c:
		conn, err = net.Dial("tcp", addr)
	case h2:
		cfg := r.tr.TLSClientConfig.Clone()
		cfg.NextProtos = []string{"h2"}
		conn, err = tls.Dial("tcp", addr, cfg)
		if err == nil && conn.(*tls.Conn).ConnectionState().NegotiatedProtocol != "h2" {
			err = fmt.Errorf("ALPN chose %q, want h2", conn.(*tls.Conn).ConnectionState().NegotiatedProtocol)
		}
	default:
		t.Fatalf("dialH2 in mode %s", r.mode)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	c := &h2Conn{t: t, conn: conn}
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(conn, h2Preface); err != nil {
		t.Fatal(err)
	}
	c.write(frame{typ: frameSettings})
	for {
		f, err := c.read()
		if err != nil {
			t.Fatalf("waiting for the server's SETTINGS: %v", err)
		}
		if f.typ == frameSettings && f.flags&flagAck == 0 {
			c.write(frame{typ: frameSettings, flags: flagAck})
			break
		}
	}
	conn.SetDeadline(time.Time{})
	return c
}

// write sends f, failing the test when it cannot.
func (c *h2Conn) write(f frame) {
	c.t.Helper()
	if err := c.tryWrite(f); err != nil {
		c.t.Fatalf("write frame type %#x: %v", f.typ, err)
	}
}

// tryWrite sends f: the 9-byte header (length, type, flags, stream) and the payload.
func (c *h2Conn) tryWrite(f frame) error {
	b := make([]byte, 9, 9+len(f.payload))
	b[0], b[1], b[2] = byte(len(f.payload)>>16), byte(len(f.payload)>>8), byte(len(f.payload))
	b[3], b[4] = f.typ, f.flags
	binary.BigEndian.PutUint32(b[5:], f.stream&0x7fffffff)
	_, err := c.conn.Write(append(b, f.payload...))
	return err
}

// read returns the next frame from the server.
func (c *h2Conn) read() (frame, error) {
	var h [9]byte
	if _, err := io.ReadFull(c.conn, h[:]); err != nil {
		return frame{}, err
	}
	f := frame{typ: h[3], flags: h[4], stream: binary.BigEndian.Uint32(h[5:]) & 0x7fffffff}
	f.payload = make([]byte, int(h[0])<<16|int(h[1])<<8|int(h[2]))
	_, err := io.ReadFull(c.conn, f.payload)
	return f, err
}

// HPACK (RFC 7541): a header field from the static table, and literals without indexing
// (section 6.2.2) of strings shorter than 127 bytes, without Huffman coding.
const (
	hpackMethodGet  = 0x82 // :method GET, static index 2
	hpackMethodPost = 0x83 // :method POST, index 3
	hpackSchemeHTTP = 0x86 // :scheme http, index 6
	hpackSchemeTLS  = 0x87 // :scheme https, index 7
	hpackIndexAuth  = 1    // :authority
	hpackIndexPath  = 4    // :path
	hpackStatus204  = 0x89 // :status 204, index 9
)

// hpackLiteral encodes a header whose name is the static table's index (with a 4-bit
// prefix, so below 15).
func hpackLiteral(index byte, value string) []byte {
	return append([]byte{index, byte(len(value))}, value...)
}

// hpackNewName encodes a header with a literal name.
func hpackNewName(name, value string) []byte {
	b := append([]byte{0x00, byte(len(name))}, name...)
	return append(append(b, byte(len(value))), value...)
}

// requestHeaders returns the header block of a request with method (an hpackMethod), path
// and more header fields, for the receiver's mode.
func requestHeaders(m mode, method byte, path string, more ...[]byte) []byte {
	scheme := byte(hpackSchemeHTTP)
	if m == h2 {
		scheme = hpackSchemeTLS
	}
	b := append([]byte{method, scheme}, hpackLiteral(hpackIndexPath, path)...)
	b = append(b, hpackLiteral(hpackIndexAuth, "kohaku")...)
	for _, f := range more {
		b = append(b, f...)
	}
	return b
}
