package store

import (
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"syscall"

	"github.com/jackc/pgx/v5/pgconn"
)

// SQLSTATE codes that the store treats specially.
const (
	codeUniqueViolation = "23505"
	codeQueryCanceled   = "57014"
)

// Transient reports whether err is a failure of the database or of the way to it rather
// than of the data: the same batch may succeed when tried again later. It is true for
// connection failures and for the SQLSTATE classes 08 (connection exception), 53
// (insufficient resources), 57P (operator intervention: shutdown, cannot connect now),
// 58 (system error), 40001 and 40P01 (serialization failure, deadlock) and 55P03 (lock not
// available).
func Transient(err error) bool {
	if err == nil {
		return false
	}
	if errors.As(err, new(*pgconn.ConnectError)) {
		// Refused, not accepting connections, database restarting: the server or the
		// database is not there now.
		return true
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		c := pgErr.Code
		switch {
		case strings.HasPrefix(c, "08"), strings.HasPrefix(c, "53"), strings.HasPrefix(c, "57P"),
			strings.HasPrefix(c, "58"), c == "40001", c == "40P01", c == "55P03":
			return true
		}
		return false
	}
	return pgconn.SafeToRetry(err) || pgconn.Timeout(err) ||
		errors.Is(err, pgconn.ErrConnClosed) || errors.Is(err, context.DeadlineExceeded) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.EPIPE) ||
		errors.As(err, new(net.Error))
}

// dataError reports whether the database rejected err's statement because of the values it
// was given, so that the message they came from can never be stored: SQLSTATE classes 22
// (data exception: a NUL byte in text, a number out of range), 23 (integrity constraint) and
// 54 (program limit exceeded: a key too large for its index).
func dataError(err error) bool {
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) {
		return false
	}
	c := pgErr.Code
	switch {
	case strings.HasPrefix(c, "22"), strings.HasPrefix(c, "23"), strings.HasPrefix(c, "54"):
		return true
	case c == codeQueryCanceled && strings.HasPrefix(pgErr.Message, "COPY from stdin failed"):
		// pgx could not encode a value for COPY and aborted it with CopyFail, whose
		// message the server hands back under query_canceled: the value is the problem.
		return true
	}
	return false
}

// uniqueViolation reports whether err is a duplicate natural key.
func uniqueViolation(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == codeUniqueViolation
}
