// Package stream holds what the receiver that publishes to Kohaku's JetStream stream and the
// writer that consumes it must agree on (DESIGN.md section 3): the stream's names and
// configuration (stream.go), the message with its subject and headers (message.go), the
// NATS connection both keep (conn.go), what a full stream looks like (full.go), the
// look at the stream's fill that both export as metrics (monitor.go), and the purge of
// written messages that keeps room in it (trim.go).
package stream
