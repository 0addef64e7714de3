// Package sora holds the wire format that Sora's stats exporter sends to a collector, and
// its validation (DESIGN.md section 2).
package sora

import (
	"errors"
	"fmt"
)

// Exporter types, sent in the x-sora-stats-exporter-type header and repeated in the
// body's "type" field.
const (
	TypeUserAgent = "connection.user-agent"
	TypeErlangVM  = "node.erlang-vm"
)

// HeaderExporterType is the request header that selects the payload kind.
const HeaderExporterType = "x-sora-stats-exporter-type"

// KnownType reports whether t is an exporter type that Kohaku stores.
func KnownType(t string) bool { return t == TypeUserAgent || t == TypeErlangVM }

// ErrUnknownType is returned for a missing or unsupported exporter type.
var ErrUnknownType = errors.New("sora: unknown exporter type")

// FieldError describes why a message is invalid, naming the offending field with a
// JSON-path-like name ("session_id", "stats[3]"). An empty Field means the body as a whole.
type FieldError struct {
	Field string `json:"field,omitempty"`
	Msg   string `json:"error"`
}

func (e *FieldError) Error() string {
	if e.Field == "" {
		return "sora: " + e.Msg
	}
	return fmt.Sprintf("sora: %s: %s", e.Field, e.Msg)
}
