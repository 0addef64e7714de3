package normalize

import "fmt"

// DecodeError reports a body that can never become rows: it is not a JSON object of the
// exporter type's shape, or its envelope holds what PostgreSQL cannot store (a \u0000
// escape, a number beyond numeric, an id longer than MaxIDBytes). Retrying cannot help, so
// the writer dead-letters the message. (A stats element that cannot be stored costs only
// itself: see Rows.Rejected.)
type DecodeError struct {
	Field string // the offending part, JSON-path-like ("timestamp", "stats[3]"); "" for the whole body
	Err   error
}

func (e *DecodeError) Error() string {
	if e.Field == "" {
		return "normalize: " + e.Err.Error()
	}
	return "normalize: " + e.Field + ": " + e.Err.Error()
}

func (e *DecodeError) Unwrap() error { return e.Err }

func decodeErr(field, format string, args ...any) *DecodeError {
	return &DecodeError{Field: field, Err: fmt.Errorf(format, args...)}
}
