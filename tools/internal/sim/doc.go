// Package sim simulates Sora's two stats feeds (DESIGN.md section 2): it derives any number
// of live-looking WebRTC connections from a real browser capture and encodes their reports
// as Sora would POST them, connection.rtc to /stats-webhook over HTTP/1.1 (the stats
// webhook of Sora 2025.1 and later), or connection.user-agent, plus the node.erlang-vm
// report of the Sora node, to /collector over HTTP/2 (the stats exporter of older Sora).
//
// A Template holds the capture: each stats member is classified as a constant (ids, ssrc,
// strings), a cumulative counter (it grew between the captured reports, at the rate it
// grew), a gauge (jitter, round-trip time, frame size...) or a clock (timestamps). A
// Connection advances that state between reports: counters grow at the captured rate, byte
// and packet counters scaled by the connection's own bitrate with noise, gauges wander
// around per-connection values, and occasional packet loss feeds packetsLost, nackCount and
// fractionLost. Sender posts the reports of one Feed, HTTP/1.1 or HTTP/2, over cleartext or
// TLS, optionally with HTTP Basic authentication, and counts the answers.
//
// Impairments is a plan of trouble in time windows (packet loss, freezes, high round-trip
// time or jitter, concealment, quality limitation, stopped media, a relayed or TCP
// transport, ICE or DTLS states, missing reports) that some connections follow, each
// impairment changing only the members of its own kind of issue; Options.Steady gives the
// others a network without trouble, so that an analysis of the stored reports can be
// checked against the plan (impairments.go says which reports show what).
package sim
