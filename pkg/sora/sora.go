// Package sora holds the wire formats that Sora sends to a collector, the stats exporter
// of older Sora and the stats webhook of Sora 2025.1 and later, and their validation
// (DESIGN.md section 2).
package sora

import (
	"errors"
	"fmt"
)

// Exporter types, sent by the stats exporter in the x-sora-stats-exporter-type header and
// repeated in the body's "type" field.
const (
	TypeUserAgent = "connection.user-agent"
	TypeErlangVM  = "node.erlang-vm"
)

// TypeConnectionRTC is the stats webhook's type: one connection's getStats() report, sent
// in the sora-stats-webhook-type header and in the body's "type" field.
const TypeConnectionRTC = "connection.rtc"

// Request headers that select the payload kind, one per feed.
const (
	HeaderExporterType = "x-sora-stats-exporter-type"
	HeaderWebhookType  = "sora-stats-webhook-type"
)

// KnownType reports whether t is a message type that Kohaku stores, of either feed. It is
// also the last part of the message's subject on the stream.
func KnownType(t string) bool { return ExporterType(t) || WebhookType(t) }

// ExporterType reports whether t is a stats exporter type (served on /collector).
func ExporterType(t string) bool { return t == TypeUserAgent || t == TypeErlangVM }

// WebhookType reports whether t is a stats webhook type (served on /stats-webhook).
func WebhookType(t string) bool { return t == TypeConnectionRTC }

// ConnectionType reports whether messages of type t describe one client connection (and
// so give a sora_connection row and rtc_*_stats rows), as connection.user-agent and
// connection.rtc do.
func ConnectionType(t string) bool { return t == TypeUserAgent || t == TypeConnectionRTC }

// ErrUnknownType is returned for a missing or unsupported message type.
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
