// Package collector is the receiver's HTTP side: it accepts Sora's stats webhook (POST on
// the webhook path, /stats-webhook by default, type connection.rtc) and the older stats
// exporter (POST /collector, connection.user-agent and node.erlang-vm), validates each body
// with kohaku/pkg/sora, publishes it unchanged to JetStream and answers 204 only after the
// PubAck arrived (DESIGN.md sections 1 to 3). With BasicAuth set, both routes require that
// credential.
//
// A receiver keeps no state of its own: everything it acknowledged is already in the stream,
// so any number of them can run behind a load balancer and any of them can be killed.
//
// The pieces are wired by cmd/kohaku-receiver, whose configuration embeds Options and
// ServerOptions: ManageStream (creates or updates the stream KOHAKU, again after reconnects),
// NewHandler (the two ingest routes and GET /.ok) and NewServer with Serve (HTTP/1.1 and
// h2c, or HTTP/1.1 and h2 over TLS with the configuration of a TLSReloader, which reads
// the certificate and client CAs again when their files change or on SIGHUP).
package collector
