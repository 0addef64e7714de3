// Package sim simulates Sora's stats exporter: it derives any number of live-looking WebRTC
// connections from a real browser capture and encodes their connection.user-agent reports,
// plus the node.erlang-vm report of the Sora node, as Sora would POST them to /collector
// (DESIGN.md section 2).
//
// A Template holds the capture: each stats member is classified as a constant (ids, ssrc,
// strings), a cumulative counter (it grew between the captured reports, at the rate it
// grew), a gauge (jitter, round-trip time, frame size...) or a clock (timestamps). A
// Connection advances that state between reports: counters grow at the captured rate, byte
// and packet counters scaled by the connection's own bitrate with noise, gauges wander
// around per-connection values, and occasional packet loss feeds packetsLost, nackCount and
// fractionLost. Sender posts the reports over HTTP/2 (h2c or TLS) and counts the answers.
package sim
