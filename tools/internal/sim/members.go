package sim

import "strings"

// gaugeRule says what an instantaneous member follows.
type gaugeRule uint8

const (
	followRTT        gaugeRule = iota + 1 // the connection's round-trip time
	followJitter                          // the connection's jitter
	followBitrate                         // the captured value times the connection's bitrate factor
	followResolution                      // the captured value times the connection's resolution factor
	followLoss                            // the fraction of packets lost since the last report
	fps                                   // a frame rate: ±1 around the captured value
	level                                 // an audio level in [0, 1]
	steady                                // a few percent around the captured value
)

// gauges lists the W3C webrtc-stats members that are instantaneous values, not counters;
// any other numeric member that grew in the capture is cumulative.
// https://www.w3.org/TR/webrtc-stats/
var gauges = map[string]gaugeRule{
	"roundTripTime":             followRTT,
	"currentRoundTripTime":      followRTT,
	"jitter":                    followJitter,
	"availableOutgoingBitrate":  followBitrate,
	"availableIncomingBitrate":  followBitrate,
	"targetBitrate":             followBitrate,
	"frameWidth":                followResolution,
	"frameHeight":               followResolution,
	"width":                     followResolution,
	"height":                    followResolution,
	"fractionLost":              followLoss,
	"framesPerSecond":           fps,
	"audioLevel":                level,
	"echoReturnLoss":            steady,
	"echoReturnLossEnhancement": steady,
}

// drivenCounters are counters that packet loss or an impairment (impair.go) drives, even
// when the capture (on a loopback network, without trouble) never saw them move, with how
// they are written.
var drivenCounters = map[string]counterUnit{
	"packetsLost":          units,
	"nackCount":            units,
	"pliCount":             units,
	"freezeCount":          units,
	"concealedSamples":     units,
	"concealmentEvents":    units,
	"totalFreezesDuration": seconds,
	"cpu":                  seconds, // qualityLimitationDurations
	"bandwidth":            seconds, // qualityLimitationDurations
}

// counterUnit says whether a driven counter counts whole units or seconds.
type counterUnit uint8

const (
	units   counterUnit = iota + 1 // written as an integer
	seconds                        // written with its fraction, even when captured as 0
)

// isClock reports whether a member holds a time in milliseconds since the epoch.
func isClock(name string) bool {
	return name == "timestamp" || strings.HasSuffix(name, "Timestamp")
}

// followsBitrate reports whether a counter counts bytes or packets, whose rate the
// connection's bitrate scales. Frames, samples and durations keep their captured rate.
func followsBitrate(name string) bool {
	lower := strings.ToLower(name)
	return name != "packetsLost" && (strings.Contains(lower, "bytes") || strings.Contains(lower, "packets"))
}

// followsFrames reports whether a counter of a video receiver grows only while frames are
// decoded, so that it stops during a freeze.
func followsFrames(name string) bool {
	switch name {
	case "qpSum", "totalDecodeTime", "totalAssemblyTime", "totalProcessingDelay", "totalInterFrameDelay",
		"totalSquaredInterFrameDelay", "jitterBufferDelay", "jitterBufferTargetDelay",
		"jitterBufferMinimumDelay", "jitterBufferEmittedCount":
		return true
	}
	return strings.Contains(strings.ToLower(name), "frames")
}
