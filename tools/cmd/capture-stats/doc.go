// Command capture-stats captures real WebRTC getStats() reports from headless Chromium and
// writes them as Kohaku fixtures: Sora connection.user-agent messages (DESIGN.md section 2)
// whose stats array is exactly what the browser returned.
//
// It serves an embedded page on a random loopback port and starts Chromium on it with fake
// camera and microphone. The page connects two RTCPeerConnections over loopback ICE
// candidates, sends audio and video in both directions plus data-channel messages, waits
// for media to flow (--warmup), then posts getStats() of both peer connections every
// --interval. Each report becomes chromium-<peer>-<n>.json: pc1 and pc2 are two
// connections of one session in channel "kohaku-fixture".
//
// To refresh the fixtures of kohaku/testsupport/fixtures, from the repository root, with Debian's
// chromium package installed:
//
//	go run ./tools/cmd/capture-stats
//	go test ./testsupport/fixtures/...
//
// which replaces testsupport/fixtures/data/chromium-pc{1,2}-{1..4}.json. Golden files derived
// from the fixtures (testdata/ of other packages) then need their -update run. Candidate
// addresses of the machine's own network interfaces are replaced by documentation
// addresses, so that the committed files do not describe the developer's network; every
// other byte of the stats is Chromium's own serialization. Use --help for all flags.
package main
