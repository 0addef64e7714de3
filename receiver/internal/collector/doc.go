// Package collector is the receiver's HTTP side: it accepts Sora's stats-exporter POSTs,
// validates them with kohaku/pkg/sora, publishes the raw body to JetStream and answers 204
// only after the PubAck arrived (DESIGN.md sections 1 to 3).
//
// A receiver keeps no state of its own: everything it acknowledged is already in the stream,
// so any number of them can run behind a load balancer and any of them can be killed.
//
// The pieces are wired by cmd/kohaku-receiver: Connect (a NATS connection that reconnects
// forever), ManageStream (creates or updates the stream KOHAKU, again after reconnects),
// NewHandler (POST /collector and GET /.ok) and NewServer with Serve (HTTP/1.1 and h2c, or
// HTTP/1.1 and h2 over TLS with TLSConfig).
package collector
