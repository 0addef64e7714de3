// Package stream holds what the receiver that publishes to Kohaku's JetStream stream and the
// writer that consumes it must agree on (DESIGN.md section 3): the stream's names and
// configuration (stream.go), the message with its subject and headers (message.go), and the
// NATS connection both keep (conn.go).
package stream
