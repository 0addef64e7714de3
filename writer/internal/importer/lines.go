package importer

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
)

// ErrLineTooLong is the error of a line longer than the limit: it is skipped, not held.
var ErrLineTooLong = errors.New("importer: line too long")

// gzipMagic starts every gzip stream (RFC 1952).
var gzipMagic = []byte{0x1f, 0x8b}

// lineReader reads the lines of an input, each at most max bytes, without holding more
// than that of any line however long it is.
type lineReader struct {
	r   *bufio.Reader
	max int
	buf []byte
	n   int // number of the line last returned, from 1
}

// newLineReader returns a lineReader on r, decompressing it when it starts with the gzip
// magic: the content tells, so that a log compressed by logrotate is read whatever its
// name. Concatenated gzip members are read as one stream, as gzip -d does.
func newLineReader(r io.Reader, max int) (*lineReader, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	magic, err := br.Peek(len(gzipMagic))
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("read: %w", err)
	}
	if bytes.Equal(magic, gzipMagic) {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("gzip: %w", err)
		}
		br = bufio.NewReaderSize(zr, 64<<10)
	}
	return &lineReader{r: br, max: max}, nil
}

// next returns the next line without its line end ("\n" or "\r\n"). The line is valid
// until the next call. complete is false for a last line that has no newline: a line the
// writer may not have finished. A line longer than max is read to its end and dropped,
// with ErrLineTooLong. At the end of the input next returns io.EOF; any other error is the
// input's.
func (l *lineReader) next() (line []byte, complete bool, err error) {
	l.buf = l.buf[:0]
	size := 0 // of the whole line, as far as read
	for {
		chunk, err := l.r.ReadSlice('\n')
		size += len(chunk)
		if size <= l.max+len("\r\n") { // beyond that the line is dropped anyway
			l.buf = append(l.buf, chunk...)
		}
		switch {
		case errors.Is(err, bufio.ErrBufferFull):
			continue // the line goes on
		case errors.Is(err, io.EOF):
			if size == 0 {
				return nil, false, io.EOF
			}
			l.n++
			if size > l.max {
				return nil, false, l.tooLong()
			}
			return l.buf, false, nil
		case err != nil:
			return nil, false, err
		}
		l.n++
		if size > l.max+len("\r\n") {
			return nil, true, l.tooLong()
		}
		line = bytes.TrimSuffix(l.buf[:len(l.buf)-1], []byte("\r"))
		if len(line) > l.max {
			return nil, true, l.tooLong()
		}
		return line, true, nil
	}
}

func (l *lineReader) tooLong() error {
	return fmt.Errorf("%w: more than %d bytes", ErrLineTooLong, l.max)
}
