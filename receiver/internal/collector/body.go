package collector

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"
)

// A request's body is read in one of three ways: whole, within the limit, when the request
// is accepted (readBody); to its end and dropped, before a refusal is answered (discard);
// and, when it is larger than the limit, on after the answer until the client stops
// (linger). The last two make every answer reach the client, also over HTTP/2: Go's HTTP/2
// server resets the stream of a handler that returns before the body ended
// (RST_STREAM NO_ERROR, which RFC 9113 section 8.1 allows after a complete response), and
// clients do not all keep an answer that is followed by a reset while they still send:
// curl 7.88 over h2c lost about one early answer in ten that way (error 92). Reading is
// bounded in bytes, by the body limit and then lingerBytes, and in time, by the server's
// ReadTimeout, which Go's server applies to the body of every request, HTTP/2 streams
// included, and then lingerTime.

// requestBody is a request body that counts the bytes read of it and remembers how reading
// ended. Only the handler's goroutine reads it.
type requestBody struct {
	io.ReadCloser
	n   int64 // bytes read
	eof bool  // read to its end
	err error // the first failure other than the end: the client went away or was too slow
}

// trackBody returns a requestBody reading r's body. It leaves r.Body as it is: the
// HTTP/1 server looks at its type after the handler (to close the connection of a client
// that waited for 100 Continue and was answered instead, for one).
func trackBody(r *http.Request) *requestBody { return &requestBody{ReadCloser: r.Body} }

func (b *requestBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.n += int64(n)
	switch {
	case err == io.EOF:
		b.eof = true
	case err != nil && b.err == nil:
		b.err = err
	}
	return n, err
}

// finished reports whether nothing more will be read: the body ended, or reading failed.
func (b *requestBody) finished() bool { return b.eof || b.err != nil }

// readBody reads the whole body b of r into buf, refusing more than the body limit.
func (h *Handler) readBody(w http.ResponseWriter, r *http.Request, b *requestBody, buf *bytes.Buffer) ([]byte, error) {
	limit := h.bodyLimit()
	if r.ContentLength > limit {
		return nil, &tooLargeError{limit: limit} // refuse before reading a byte
	}
	if r.ContentLength > 0 {
		buf.Grow(int(r.ContentLength) + bytes.MinRead) // one allocation, and room to see EOF
	}
	// MaxBytesReader also tells the server to close an HTTP/1 connection whose body was
	// not read to its end.
	if _, err := buf.ReadFrom(http.MaxBytesReader(w, b, limit)); err != nil {
		var mb *http.MaxBytesError
		if errors.As(err, &mb) {
			return nil, err
		}
		return nil, &readError{err: err}
	}
	return buf.Bytes(), nil
}

// maxPooledBody is the largest buffer that bodyPool keeps: larger bodies are rare, and a
// pool of them would hold much memory for little.
const maxPooledBody = 1 << 20

// bodyPool recycles the buffers that request bodies are read into. Allocating a body's
// buffer anew for every request cleared it and made the garbage collector run more often:
// about a tenth of the receiver's CPU under load, in profiles with the Chromium fixture.
// A buffer goes back only once nothing refers to its body any more: the body was refused
// before it was published (sora.Validate's errors copy what they quote), or JetStream
// acknowledged it, after which the NATS client holds none of it.
type bodyPool struct{ p sync.Pool }

// get returns an empty buffer.
func (bp *bodyPool) get() *bytes.Buffer {
	if b, ok := bp.p.Get().(*bytes.Buffer); ok {
		return b
	}
	return new(bytes.Buffer)
}

// put gives buf back for another request's body; the caller must not use it or its bytes
// afterwards.
func (bp *bodyPool) put(buf *bytes.Buffer) {
	if buf.Cap() > maxPooledBody {
		return
	}
	buf.Reset()
	bp.p.Put(buf)
}

// discard reads and drops what is left of b, the body of a request about to be refused,
// up to the body limit, so that the refusal answers the whole request. It reads nothing
// of a body announced larger than the limit, which is answered at once (and lingered on),
// nor of an HTTP/1 request that waits for 100 Continue: the refusal is what it waits for,
// and Go's server then closes the connection instead of reading a body nobody asked for
// (RFC 9110 section 10.1.1). A body found larger than the limit is left to linger.
func (h *Handler) discard(w http.ResponseWriter, r *http.Request, b *requestBody) {
	limit := h.bodyLimit()
	if b.finished() || r.ContentLength > limit || b.n > limit {
		return
	}
	if r.ProtoMajor == 1 && b.n == 0 && strings.EqualFold(r.Header.Get("Expect"), "100-continue") {
		return
	}
	// MaxBytesReader also tells the server to close an HTTP/1 connection whose body goes
	// on past the limit.
	io.Copy(io.Discard, http.MaxBytesReader(w, b, limit-b.n))
}

// lingerBytes bounds what linger reads: more than a client sends, on a fast link, before
// it sees the answer and stops (curl over loopback: up to about 1.5 MiB).
const lingerBytes = 8 << 20

// lingerTime bounds how long linger waits for the client to stop sending: as long as
// net/http waits, for a like reason, before it resets an HTTP/1 connection whose body was
// not read (rstAvoidanceDelay in server.go).
const lingerTime = 500 * time.Millisecond

// linger sends the answer already written to an HTTP/2 request whose body did not end,
// because it is larger than the limit, and then reads on, for at most lingerTime and
// lingerBytes, until the client stops sending. A client that sees a final answer stops,
// resetting the stream (curl) or waiting for the server to end it (Go's, which then waits
// lingerTime), so that the reset that the server sends when the handler returns reaches a
// client that has its answer. HTTP/1 needs none of it: there the server reads on, or
// closes the connection after such a delay, by itself.
func linger(w http.ResponseWriter, r *http.Request, b *requestBody) {
	if b.finished() || r.ProtoMajor != 2 {
		return
	}
	rc := http.NewResponseController(w)
	if err := rc.Flush(); err != nil {
		return
	}
	rc.SetReadDeadline(time.Now().Add(lingerTime)) // instead of what is left of ReadTimeout
	io.CopyN(io.Discard, b, lingerBytes)
}
