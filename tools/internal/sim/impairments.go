package sim

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
)

// ImpairmentKind names one kind of trouble that a plan can inject; each changes only the
// stats members of one kind of issue, so that an analysis of the reports finds exactly one
// issue per impairment.
type ImpairmentKind uint8

const (
	// ImpairLoss loses Percent of the packets sent to the connection: inbound-rtp
	// packetsLost grows so that Δlost / (Δlost + ΔpacketsReceived) = Percent/100, and
	// video nackCount grows by the lost packets.
	ImpairLoss ImpairmentKind = iota + 1
	// ImpairRemoteLoss loses Percent of the packets that the connection sends, as the remote
	// side reports it: remote-inbound-rtp packetsLost grows by Percent/100 of the outbound
	// packetsSent growth, fractionLost is Percent/100, and the outbound video nackCount
	// grows by the lost packets.
	ImpairRemoteLoss
	// ImpairFreeze freezes the received video: framesDecoded, framesReceived and the other
	// per-frame counters of the video inbound-rtp stop, framesPerSecond is 0,
	// totalFreezesDuration grows by the frozen time, freezeCount grows by 1 and pliCount by 1
	// plus 1 per frozen second.
	ImpairFreeze
	// ImpairRTT sets the round-trip time to Delay: candidate-pair currentRoundTripTime and
	// remote-inbound-rtp and remote-outbound-rtp roundTripTime, with totalRoundTripTime
	// growing accordingly.
	ImpairRTT
	// ImpairJitter sets inbound-rtp jitter (audio and video) to Delay.
	ImpairJitter
	// ImpairConceal conceals Percent of the received audio: concealedSamples of the audio
	// inbound-rtp grows by Percent/100 of the totalSamplesReceived growth, and
	// concealmentEvents by 1.
	ImpairConceal
	// ImpairCPU limits the sent video by CPU: outbound-rtp qualityLimitationReason is "cpu"
	// and qualityLimitationDurations.cpu grows by the elapsed time instead of .none.
	ImpairCPU
	// ImpairBandwidth is ImpairCPU with the reason "bandwidth".
	ImpairBandwidth
	// ImpairStop stops the media on active streams: every counter of inbound-rtp and
	// outbound-rtp (bytes, packets, frames, samples) and the bytes and packets of
	// remote-outbound-rtp stop growing; outbound-rtp active stays true, and the transport and
	// candidate pair keep counting (RTCP, data channel).
	ImpairStop
	// ImpairRelay makes the local candidate of every candidate pair (so the selected one)
	// of candidateType "relay" (TURN).
	ImpairRelay
	// ImpairTCP makes the local candidate of every candidate pair of protocol "tcp".
	ImpairTCP
	// ImpairICE sets transport iceState to State.
	ImpairICE
	// ImpairDTLS sets transport dtlsState to State.
	ImpairDTLS
	// ImpairGap holds back the reports due in the window: Sender does not send them.
	ImpairGap
)

// impairmentNames are the names of the kinds in the plan syntax, by kind.
var impairmentNames = [...]string{
	ImpairLoss: "loss", ImpairRemoteLoss: "remoteloss", ImpairFreeze: "freeze", ImpairRTT: "rtt",
	ImpairJitter: "jitter", ImpairConceal: "conceal", ImpairCPU: "cpu", ImpairBandwidth: "bandwidth",
	ImpairStop: "stop", ImpairRelay: "relay", ImpairTCP: "tcp", ImpairICE: "ice", ImpairDTLS: "dtls",
	ImpairGap: "gap",
}

// String returns the kind's name in the plan syntax.
func (k ImpairmentKind) String() string {
	if int(k) < len(impairmentNames) && impairmentNames[k] != "" {
		return impairmentNames[k]
	}
	return "ImpairmentKind(" + strconv.Itoa(int(k)) + ")"
}

// EndOfRun is the End of a window that lasts until the connection's last report.
const EndOfRun = time.Duration(math.MaxInt64)

// freezeLength is how long freeze@T freezes the video.
const freezeLength = time.Second

// Impairment is one kind of trouble during one window of a connection's life.
type Impairment struct {
	Kind    ImpairmentKind
	Percent float64       // loss, remoteloss, conceal: the share in percent (10 for 10%)
	Delay   time.Duration // rtt, jitter: the value the gauges show
	State   string        // ice, dtls: the state the transport reports
	// Start and End bound the half-open window [Start, End), as offsets from the
	// connection's origin (see Impairments); End is EndOfRun for a window without end.
	Start, End time.Duration
}

// String returns the impairment in the plan syntax; ParseImpairments reads it back.
func (i Impairment) String() string {
	s := i.Kind.String()
	switch i.Kind {
	case ImpairLoss, ImpairRemoteLoss, ImpairConceal:
		s += "=" + strconv.FormatFloat(i.Percent, 'f', -1, 64) + "%"
	case ImpairRTT, ImpairJitter:
		s += "=" + i.Delay.String()
	case ImpairICE, ImpairDTLS:
		s += "=" + i.State
	}
	switch {
	case i.Start == 0 && i.End == EndOfRun:
	case i.End == EndOfRun:
		s += "@" + i.Start.String() + "-"
	default:
		s += "@" + i.Start.String() + "-" + i.End.String()
	}
	return s
}

// contains reports whether the window holds the offset t (in seconds): Start <= t < End.
func (i Impairment) contains(t float64) bool {
	return i.Start.Seconds() <= t && t < i.endSeconds()
}

// endSeconds returns End in seconds, +Inf for EndOfRun.
func (i Impairment) endSeconds() float64 {
	if i.End == EndOfRun {
		return math.Inf(1)
	}
	return i.End.Seconds()
}

// Impairments is a plan of trouble for a connection, in the syntax that ParseImpairments
// reads. Its times are offsets from the connection's origin: the time passed to its first
// Report, Webhook or Silent call, which is the envelope timestamp of its first report
// unless a gap holds that report back. Each window is half-open, [Start, End), and
// affects the reports as follows, with a step being the time (e0, e1] between the
// connection's reports at offsets e0 and e1:
//
//   - Counters (loss, remoteloss, freeze, conceal, cpu, bandwidth, stop) change by what
//     happened during the part of the step inside the window: a report whose whole step
//     lies in the window shows exactly the planned figure (10% loss, no frames decoded...),
//     the first and last report touching the window a share of it, and the reports of
//     steps outside the window nothing. The one-off increments (freezeCount,
//     concealmentEvents, the first pliCount) come in the first report whose step holds
//     part of the window.
//   - Gauges and states (rtt, jitter, relay, tcp, ice, dtls, the qualityLimitationReason of
//     cpu and bandwidth, the framesPerSecond of 0 during freeze and stop) show the planned
//     value in a report at offset e exactly when Start <= e < End.
//   - A gap holds back every report due at an offset e with Start <= e < End.
//
// So an analysis of the stored reports finds each impairment, of counters from the first
// report after origin+Start to the first report at or after origin+End, of gauges from the
// first report at or after origin+Start to the last one before origin+End: within one
// reporting interval of the window either way.
type Impairments []Impairment

// String returns the plan in the syntax that ParseImpairments reads.
func (p Impairments) String() string {
	parts := make([]string, len(p))
	for i, imp := range p {
		parts[i] = imp.String()
	}
	return strings.Join(parts, ",")
}

// ParseImpairments reads a plan: impairments separated by commas, each a kind, a value
// for the kinds that take one, and an optional window:
//
//	loss=P%  remoteloss=P%  conceal=P%       P in percent, 0 < P < 100 for loss, <= 100 otherwise
//	rtt=D    jitter=D                        D a Go duration (600ms), above 0
//	ice=S    dtls=S                          S a state that is not connected: ice new, checking,
//	                                         disconnected, failed or closed; dtls new, connecting,
//	                                         closed or failed
//	freeze  cpu  bandwidth  stop  relay  tcp  gap
//
// A window is @T1-T2 for [T1, T2), @T1- for T1 to the end of the run; without a window
// an impairment lasts the whole run (gap excepted, which needs a window). A single time,
// @T, is for freeze only: a freeze of one second, [T, T+1s). Times are Go durations
// (90s, 1m30s) from the connection's origin. Windows of one kind must not overlap, nor
// those of cpu and bandwidth. An empty plan is no impairment.
//
//	loss=10%@60s-90s,freeze@120s,rtt=600ms@150s-170s,relay,cpu@200s-230s
func ParseImpairments(plan string) (Impairments, error) {
	if strings.TrimSpace(plan) == "" {
		return nil, nil
	}
	var p Impairments
	for _, item := range strings.Split(plan, ",") {
		imp, err := parseImpairment(strings.TrimSpace(item))
		if err != nil {
			return nil, fmt.Errorf("sim: impairment %q: %w", strings.TrimSpace(item), err)
		}
		p = append(p, imp)
	}
	if err := p.Validate(); err != nil {
		return nil, err
	}
	return p, nil
}

// parseImpairment reads one item of a plan.
func parseImpairment(item string) (Impairment, error) {
	if item == "" {
		return Impairment{}, fmt.Errorf("empty; want kind[=value][@window]")
	}
	spec, window, hasWindow := strings.Cut(item, "@")
	name, value, hasValue := strings.Cut(spec, "=")
	i := Impairment{Kind: impairmentKind(name), End: EndOfRun}
	if i.Kind == 0 {
		return i, fmt.Errorf("unknown kind %q; want one of %s", name, strings.Join(impairmentNames[1:], ", "))
	}
	var err error
	switch i.Kind {
	case ImpairLoss, ImpairRemoteLoss, ImpairConceal:
		i.Percent, err = parsePercent(value, hasValue)
	case ImpairRTT, ImpairJitter:
		i.Delay, err = parseDelay(value, hasValue)
	case ImpairICE, ImpairDTLS:
		i.State, err = parseState(i.Kind, value, hasValue)
	default:
		if hasValue {
			err = fmt.Errorf("%s takes no value", i.Kind)
		}
	}
	if err != nil {
		return i, err
	}
	if hasWindow {
		if i.Start, i.End, err = parseWindow(i.Kind, window); err != nil {
			return i, err
		}
	}
	return i, nil
}

// impairmentKind returns the kind called name, or 0.
func impairmentKind(name string) ImpairmentKind {
	for k, n := range impairmentNames {
		if n != "" && n == name {
			return ImpairmentKind(k)
		}
	}
	return 0
}

// parsePercent reads the P% of loss, remoteloss and conceal.
func parsePercent(value string, ok bool) (float64, error) {
	digits, isPercent := strings.CutSuffix(value, "%")
	if !ok || !isPercent {
		return 0, fmt.Errorf("want a share in percent, as =10%%")
	}
	p, err := strconv.ParseFloat(digits, 64)
	if err != nil || math.IsNaN(p) || p <= 0 || p > 100 {
		return 0, fmt.Errorf("share %q: want a number above 0 and at most 100", digits)
	}
	return p, nil
}

// parseDelay reads the D of rtt and jitter.
func parseDelay(value string, ok bool) (time.Duration, error) {
	if !ok {
		return 0, fmt.Errorf("want a duration, as =600ms")
	}
	d, err := time.ParseDuration(value)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("duration %q: want a positive Go duration, as 600ms", value)
	}
	return d, nil
}

// iceStates and dtlsStates are the states of RTCIceTransportState and RTCDtlsTransportState
// that are not connected: the ones an impairment may set.
// https://www.w3.org/TR/webrtc/#rtcicetransportstate
var (
	iceStates  = []string{"new", "checking", "disconnected", "failed", "closed"}
	dtlsStates = []string{"new", "connecting", "closed", "failed"}
)

// parseState reads the S of ice and dtls.
func parseState(k ImpairmentKind, value string, ok bool) (string, error) {
	states := iceStates
	if k == ImpairDTLS {
		states = dtlsStates
	}
	if !ok || !slices.Contains(states, value) {
		return "", fmt.Errorf("state %q: want one of %s", value, strings.Join(states, ", "))
	}
	return value, nil
}

// parseWindow reads T1-T2, T1- or T (freeze only).
func parseWindow(k ImpairmentKind, window string) (start, end time.Duration, err error) {
	from, to, isRange := strings.Cut(window, "-")
	if start, err = parseOffset(from); err != nil {
		return 0, 0, err
	}
	switch {
	case !isRange && k == ImpairFreeze:
		return start, start + freezeLength, nil
	case !isRange:
		return 0, 0, fmt.Errorf("window @%s: a single time suits only freeze; want @T1-T2 or @T1-", window)
	case to == "":
		return start, EndOfRun, nil
	}
	if end, err = parseOffset(to); err != nil {
		return 0, 0, err
	}
	if end <= start {
		return 0, 0, fmt.Errorf("window @%s ends before it starts", window)
	}
	return start, end, nil
}

// parseOffset reads one time of a window.
func parseOffset(s string) (time.Duration, error) {
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("time %q: want a Go duration from the connection's first report, as 90s or 1m30s", s)
	}
	return d, nil
}

// Validate reports whether the plan is one that ParseImpairments could have returned: known
// kinds with valid values and windows, no gap without a window, and no overlapping windows
// of one kind (cpu and bandwidth count as one).
func (p Impairments) Validate() error {
	for n, i := range p {
		var err error
		switch {
		case i.Kind == 0 || int(i.Kind) >= len(impairmentNames):
			err = fmt.Errorf("unknown kind %d", i.Kind)
		case i.Start < 0 || i.End <= i.Start:
			err = fmt.Errorf("window [%s, %s) is empty or negative", i.Start, i.End)
		case i.Kind == ImpairGap && i.Start == 0 && i.End == EndOfRun:
			err = fmt.Errorf("a gap needs a window, or the connection would send nothing")
		case i.Kind == ImpairLoss && (i.Percent <= 0 || i.Percent >= 100):
			err = fmt.Errorf("loss %v%%: want above 0 and below 100 (stop stops the media)", i.Percent)
		case (i.Kind == ImpairRemoteLoss || i.Kind == ImpairConceal) && (i.Percent <= 0 || i.Percent > 100):
			err = fmt.Errorf("%s %v%%: want above 0 and at most 100", i.Kind, i.Percent)
		case (i.Kind == ImpairRTT || i.Kind == ImpairJitter) && i.Delay <= 0:
			err = fmt.Errorf("%s %s: want above 0", i.Kind, i.Delay)
		case i.Kind == ImpairICE && !slices.Contains(iceStates, i.State),
			i.Kind == ImpairDTLS && !slices.Contains(dtlsStates, i.State):
			_, err = parseState(i.Kind, i.State, true)
		}
		if err != nil {
			return fmt.Errorf("sim: impairment %s: %w", i, err)
		}
		for _, j := range p[:n] {
			if family(j.Kind) == family(i.Kind) && i.Start < j.End && j.Start < i.End {
				return fmt.Errorf("sim: impairment %s overlaps %s", i, j)
			}
		}
	}
	return nil
}

// family returns the kind whose windows may not overlap those of k.
func family(k ImpairmentKind) ImpairmentKind {
	if k == ImpairBandwidth {
		return ImpairCPU // one limitation reason at a time
	}
	return k
}

// silent reports whether a gap of the plan holds back the report at offset t seconds.
func (p Impairments) silent(t float64) bool {
	for _, i := range p {
		if i.Kind == ImpairGap && i.contains(t) {
			return true
		}
	}
	return false
}

// active returns the impairment of kind k whose window holds the offset t seconds, or nil.
func (p Impairments) active(k ImpairmentKind, t float64) *Impairment {
	for n := range p {
		if p[n].Kind == k && p[n].contains(t) {
			return &p[n]
		}
	}
	return nil
}
