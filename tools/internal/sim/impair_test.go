package sim

import (
	"fmt"
	"math"
	"testing"
	"time"

	"kohaku/pkg/sora"
)

// impairStart is when the test connections make their first report: their origin.
var impairStart = time.Date(2026, 11, 29, 6, 0, 0, 0, time.UTC)

// statsByID is one report's stats elements by id.
type statsByID map[string]map[string]any

// impairedRun returns the reports of an impaired and of a clean connection (on a steady
// network) every step seconds from 0 to until seconds, by offset in milliseconds.
func impairedRun(t *testing.T, plan string, step, until float64) (impaired, clean map[int]statsByID) {
	t.Helper()
	p, err := ParseImpairments(plan)
	if err != nil {
		t.Fatal(err)
	}
	conns := newTestConnections(t, Options{Connections: 2, Channels: 1, Seed: 21, Steady: true, Impair: p, Impaired: 1})
	if conns[0].Impairments() == nil || conns[1].Impairments() != nil {
		t.Fatalf("Impaired 1 gave plans %v and %v, want the first connection only", conns[0].Impairments(), conns[1].Impairments())
	}
	impaired, clean = map[int]statsByID{}, map[int]statsByID{}
	for at := 0.0; at <= until; at += step {
		now := impairStart.Add(time.Duration(at * float64(time.Second)))
		for i, into := range []map[int]statsByID{impaired, clean} {
			body := conns[i].Webhook(now)
			if err := sora.Validate(sora.TypeConnectionRTC, body); err != nil {
				t.Fatalf("report at %vs fails validation: %v", at, err)
			}
			r := statsByID{}
			for _, s := range decode(t, body).Stats {
				r[s["id"].(string)] = s
			}
			into[int(math.Round(at*1000))] = r
		}
	}
	if !conns[0].Origin().Equal(impairStart) {
		t.Fatalf("Origin() = %v, want the first report's time %v", conns[0].Origin(), impairStart)
	}
	return impaired, clean
}

// elem returns the element of type typ (and kind, unless empty); a candidate pair or local
// candidate is the selected one.
func (r statsByID) elem(t *testing.T, typ, kind string) map[string]any {
	t.Helper()
	switch typ {
	case "candidate-pair", "local-candidate":
		for _, s := range r {
			if s["type"] != "transport" {
				continue
			}
			pair := r[s["selectedCandidatePairId"].(string)]
			if typ == "local-candidate" {
				return r[pair["localCandidateId"].(string)]
			}
			return pair
		}
	}
	for _, s := range r {
		if s["type"] == typ && (kind == "" || s["kind"] == kind) {
			return s
		}
	}
	t.Fatalf("no %s %s element", kind, typ)
	return nil
}

// num returns the number member name of typ/kind in r, or of its record when name is a.b.
func (r statsByID) num(t *testing.T, typ, kind, name string) float64 {
	t.Helper()
	s := r.elem(t, typ, kind)
	if name == "cpu" || name == "bandwidth" || name == "none" {
		s = s["qualityLimitationDurations"].(map[string]any)
	}
	v, ok := s[name].(float64)
	if !ok {
		t.Fatalf("%s %s has no number %s", kind, typ, name)
	}
	return v
}

// str returns the string member name of typ/kind in r.
func (r statsByID) str(t *testing.T, typ, kind, name string) string {
	t.Helper()
	v, _ := r.elem(t, typ, kind)[name].(string)
	return v
}

// figure is what an impairment drives: for a step from prev to cur, or at cur.
type figure func(t *testing.T, prev, cur statsByID, dt float64) float64

// delta returns the growth of a member over the step.
func delta(typ, kind, name string) func(t *testing.T, prev, cur statsByID) float64 {
	return func(t *testing.T, prev, cur statsByID) float64 {
		return cur.num(t, typ, kind, name) - prev.num(t, typ, kind, name)
	}
}

// is returns 1 when the condition holds, 0 otherwise.
func is(ok bool) float64 {
	if ok {
		return 1
	}
	return 0
}

func TestImpairmentsShapeTheReports(t *testing.T) {
	const step = 5.0
	tests := []struct {
		name  string
		plan  string // one window, from..to, or the whole run
		from  float64
		to    float64
		gauge bool   // the figure holds at an instant: checked in every report, in the window when from <= at < to
		fig   figure // the figure, for a step (gauge false) or at its end
		in    float64
		out   float64
		tol   float64
	}{
		{"loss: lost share of the packets sent to us", "loss=10%@60s-90s", 60, 90, false,
			func(t *testing.T, p, c statsByID, _ float64) float64 {
				lost, recv := delta("inbound-rtp", "video", "packetsLost")(t, p, c), delta("inbound-rtp", "video", "packetsReceived")(t, p, c)
				return lost / (lost + recv)
			}, 0.10, 0, 0.01},
		{"loss on audio too", "loss=10%@60s-90s", 60, 90, false,
			func(t *testing.T, p, c statsByID, _ float64) float64 {
				lost, recv := delta("inbound-rtp", "audio", "packetsLost")(t, p, c), delta("inbound-rtp", "audio", "packetsReceived")(t, p, c)
				return lost / (lost + recv)
			}, 0.10, 0, 0.02},
		{"loss: a NACK per lost video packet", "loss=10%@60s-90s", 60, 90, false,
			func(t *testing.T, p, c statsByID, _ float64) float64 {
				return delta("inbound-rtp", "video", "nackCount")(t, p, c) - delta("inbound-rtp", "video", "packetsLost")(t, p, c)
			}, 0, 0, 1},
		{"remoteloss: lost share of our packets", "remoteloss=20%@60s-90s", 60, 90, false,
			func(t *testing.T, p, c statsByID, _ float64) float64 {
				return delta("remote-inbound-rtp", "video", "packetsLost")(t, p, c) / delta("outbound-rtp", "video", "packetsSent")(t, p, c)
			}, 0.20, 0, 0.01},
		{"remoteloss: fractionLost of the step", "remoteloss=20%@60s-90s", 60, 90, false,
			func(t *testing.T, _, c statsByID, _ float64) float64 {
				return c.num(t, "remote-inbound-rtp", "audio", "fractionLost")
			}, 0.20, 0, 1e-9},
		{"remoteloss: the sender counts the NACKs", "remoteloss=20%@60s-90s", 60, 90, false,
			func(t *testing.T, p, c statsByID, _ float64) float64 {
				return is(delta("outbound-rtp", "video", "nackCount")(t, p, c) > 0)
			}, 1, 0, 0},
		{"freeze: frozen seconds", "freeze@60s-75s", 60, 75, false,
			func(t *testing.T, p, c statsByID, dt float64) float64 {
				return delta("inbound-rtp", "video", "totalFreezesDuration")(t, p, c) / dt
			}, 1, 0, 1e-9},
		{"freeze: no frame decoded nor received", "freeze@60s-75s", 60, 75, false,
			func(t *testing.T, p, c statsByID, _ float64) float64 {
				return is(delta("inbound-rtp", "video", "framesDecoded")(t, p, c) == 0 &&
					delta("inbound-rtp", "video", "framesReceived")(t, p, c) == 0 &&
					delta("inbound-rtp", "video", "totalDecodeTime")(t, p, c) == 0)
			}, 1, 0, 0},
		{"freeze: PLIs", "freeze@60s-75s", 60, 75, false,
			func(t *testing.T, p, c statsByID, _ float64) float64 {
				return is(delta("inbound-rtp", "video", "pliCount")(t, p, c) >= 5)
			}, 1, 0, 0},
		{"freeze: framesPerSecond 0", "freeze@60s-75s", 60, 75, true,
			func(t *testing.T, _, c statsByID, _ float64) float64 {
				return is(c.num(t, "inbound-rtp", "video", "framesPerSecond") == 0)
			}, 1, 0, 0},
		{"freeze: media still flows", "freeze@60s-75s", 60, 75, false,
			func(t *testing.T, p, c statsByID, _ float64) float64 {
				return is(delta("inbound-rtp", "video", "bytesReceived")(t, p, c) > 0)
			}, 1, 1, 0},
		{"rtt: candidate pair", "rtt=600ms@60s-90s", 60, 90, true,
			func(t *testing.T, _, c statsByID, _ float64) float64 {
				return c.num(t, "candidate-pair", "", "currentRoundTripTime")
			}, 0.6, -1, 0},
		{"rtt: remote-inbound-rtp", "rtt=600ms@60s-90s", 60, 90, true,
			func(t *testing.T, _, c statsByID, _ float64) float64 {
				return c.num(t, "remote-inbound-rtp", "video", "roundTripTime")
			}, 0.6, -1, 0},
		{"jitter: inbound audio", "jitter=80ms@60s-90s", 60, 90, true,
			func(t *testing.T, _, c statsByID, _ float64) float64 {
				return c.num(t, "inbound-rtp", "audio", "jitter")
			}, 0.08, -1, 0},
		{"jitter: inbound video", "jitter=80ms@60s-90s", 60, 90, true,
			func(t *testing.T, _, c statsByID, _ float64) float64 {
				return c.num(t, "inbound-rtp", "video", "jitter")
			}, 0.08, -1, 0},
		{"conceal: concealed share of the samples", "conceal=5%@60s-90s", 60, 90, false,
			func(t *testing.T, p, c statsByID, _ float64) float64 {
				return delta("inbound-rtp", "audio", "concealedSamples")(t, p, c) / delta("inbound-rtp", "audio", "totalSamplesReceived")(t, p, c)
			}, 0.05, 0, 1e-4},
		{"cpu: limited seconds", "cpu@60s-90s", 60, 90, false,
			func(t *testing.T, p, c statsByID, dt float64) float64 {
				return delta("outbound-rtp", "video", "cpu")(t, p, c) / dt
			}, 1, 0, 1e-9},
		{"cpu: not unlimited meanwhile", "cpu@60s-90s", 60, 90, false,
			func(t *testing.T, p, c statsByID, _ float64) float64 {
				return is(delta("outbound-rtp", "video", "none")(t, p, c) == 0)
			}, 1, 0, 0},
		{"cpu: the reason", "cpu@60s-90s", 60, 90, true,
			func(t *testing.T, _, c statsByID, _ float64) float64 {
				return is(c.str(t, "outbound-rtp", "video", "qualityLimitationReason") == "cpu")
			}, 1, 0, 0},
		{"bandwidth: limited seconds", "bandwidth@60s-90s", 60, 90, false,
			func(t *testing.T, p, c statsByID, dt float64) float64 {
				return delta("outbound-rtp", "video", "bandwidth")(t, p, c) / dt
			}, 1, 0, 1e-9},
		{"bandwidth: the reason", "bandwidth@60s-90s", 60, 90, true,
			func(t *testing.T, _, c statsByID, _ float64) float64 {
				return is(c.str(t, "outbound-rtp", "video", "qualityLimitationReason") == "bandwidth")
			}, 1, 0, 0},
		{"stop: no bytes nor packets either way", "stop@60s-90s", 60, 90, false,
			func(t *testing.T, p, c statsByID, _ float64) float64 {
				moved := 0.0
				for _, k := range []string{"audio", "video"} {
					moved += delta("inbound-rtp", k, "bytesReceived")(t, p, c) + delta("inbound-rtp", k, "packetsReceived")(t, p, c) +
						delta("outbound-rtp", k, "bytesSent")(t, p, c) + delta("outbound-rtp", k, "packetsSent")(t, p, c)
				}
				return is(moved == 0)
			}, 1, 0, 0},
		{"stop: the stream stays active", "stop@60s-90s", 60, 90, true,
			func(t *testing.T, _, c statsByID, _ float64) float64 {
				return is(c.elem(t, "outbound-rtp", "video")["active"] == true)
			}, 1, 1, 0},
		{"relay: the selected local candidate", "relay", 0, math.Inf(1), true,
			func(t *testing.T, _, c statsByID, _ float64) float64 {
				return is(c.str(t, "local-candidate", "", "candidateType") == "relay")
			}, 1, 0, 0},
		{"tcp: the selected local candidate", "tcp", 0, math.Inf(1), true,
			func(t *testing.T, _, c statsByID, _ float64) float64 {
				return is(c.str(t, "local-candidate", "", "protocol") == "tcp")
			}, 1, 0, 0},
		{"ice: transport state", "ice=disconnected@60s-90s", 60, 90, true,
			func(t *testing.T, _, c statsByID, _ float64) float64 {
				return is(c.str(t, "transport", "", "iceState") == "disconnected")
			}, 1, 0, 0},
		{"dtls: transport state", "dtls=failed@60s-90s", 60, 90, true,
			func(t *testing.T, _, c statsByID, _ float64) float64 {
				return is(c.str(t, "transport", "", "dtlsState") == "failed")
			}, 1, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			impaired, clean := impairedRun(t, tt.plan, step, 120)
			var inside, outside int
			for ms := int(step * 1000); ms <= 120_000; ms += int(step * 1000) {
				at := float64(ms) / 1000
				got := tt.fig(t, impaired[ms-int(step*1000)], impaired[ms], step)
				want, where := tt.out, "outside"
				switch {
				case tt.gauge && tt.from <= at && at < tt.to, !tt.gauge && tt.from <= at-step && at <= tt.to:
					want, where = tt.in, "inside"
					inside++
				case !tt.gauge && at > tt.from && at-step < tt.to:
					continue // a step partly in the window: TestImpairmentsShareEdgeSteps
				default:
					outside++
				}
				if want < 0 { // a gauge of the network of the connection's own: not the planned value
					if got == tt.in || got <= 0 || got > 0.1 {
						t.Errorf("report at %vs (outside the window): %v, want a small value of the connection's own", at, got)
					}
				} else if math.Abs(got-want) > tt.tol {
					t.Errorf("report at %vs (%s the window): %v, want %v ± %v", at, where, got, want, tt.tol)
				}
				cleanGot := tt.fig(t, clean[ms-int(step*1000)], clean[ms], step)
				if cleanWant := tt.out; cleanWant >= 0 && math.Abs(cleanGot-cleanWant) > tt.tol || cleanWant < 0 && cleanGot == tt.in {
					t.Errorf("clean connection's report at %vs: %v, want %v as outside any window", at, cleanGot, tt.out)
				}
			}
			if inside == 0 || outside == 0 && tt.to < 120 {
				t.Errorf("checked %d reports inside the window and %d outside, want some of each", inside, outside)
			}
		})
	}
}

// TestImpairmentsShareEdgeSteps checks the steps that a window boundary cuts: they carry the
// share of the figure that fell in the window, and one-off counts come once.
func TestImpairmentsShareEdgeSteps(t *testing.T) {
	impaired, _ := impairedRun(t, "freeze@62s,loss=10%@83s-87s,cpu@91s-93s", 5, 120)
	at := func(s float64) statsByID { return impaired[int(s*1000)] }
	// The freeze of one second, [62s, 63s), lies in the step (60s, 65s].
	var freezes float64
	for s := 5.0; s <= 120; s += 5 {
		d := delta("inbound-rtp", "video", "freezeCount")(t, at(s-5), at(s))
		frozen := delta("inbound-rtp", "video", "totalFreezesDuration")(t, at(s-5), at(s))
		freezes += d
		wantD, wantFrozen := 0.0, 0.0
		if s == 65 {
			wantD, wantFrozen = 1, 1
		}
		if d != wantD || math.Abs(frozen-wantFrozen) > 1e-9 {
			t.Errorf("step to %vs: freezeCount +%v, totalFreezesDuration +%v; want +%v and +%v", s, d, frozen, wantD, wantFrozen)
		}
	}
	if freezes != 1 {
		t.Errorf("freezeCount grew by %v over the run, want 1", freezes)
	}
	decoded := delta("inbound-rtp", "video", "framesDecoded")
	before, during := decoded(t, at(55), at(60)), decoded(t, at(60), at(65))
	if math.Abs(during-before*4/5) > 1.5 {
		t.Errorf("framesDecoded grew by %v in the step holding the 1 s freeze, want 4/5 of %v", during, before)
	}
	// Loss during [83s, 87s): 2 s of the step (80s, 85s] and 2 s of (85s, 90s].
	for _, s := range []float64{85, 90} {
		lost, recv := delta("inbound-rtp", "video", "packetsLost")(t, at(s-5), at(s)), delta("inbound-rtp", "video", "packetsReceived")(t, at(s-5), at(s))
		if want := recv * 2 / 5 / 9; math.Abs(lost-want) > 1.5 {
			t.Errorf("step to %vs: %v of %v packets lost, want %.1f (10%% of the 2 s in the window)", s, lost, recv, want)
		}
	}
	// CPU limitation during [91s, 93s): 2 s of the step (90s, 95s], and the reason at
	// neither report.
	if d := delta("outbound-rtp", "video", "cpu")(t, at(90), at(95)); math.Abs(d-2) > 1e-9 {
		t.Errorf("qualityLimitationDurations.cpu grew by %v in (90s, 95s], want 2", d)
	}
	for _, s := range []float64{90, 95} {
		if r := at(s).str(t, "outbound-rtp", "video", "qualityLimitationReason"); r != "none" {
			t.Errorf("qualityLimitationReason at %vs = %q, want none: the limitation held at neither report", s, r)
		}
	}
}

func TestImpairmentsKeepCountersMonotonic(t *testing.T) {
	plan := "loss=30%@5s-20s,remoteloss=30%@10s-25s,freeze@15s-30s,rtt=400ms@0s-10s,jitter=90ms@20s-,conceal=50%@5s-15s," +
		"cpu@0s-12s,bandwidth@12s-30s,stop@25s-35s,relay,tcp,ice=failed@30s-40s,dtls=closed@30s-40s"
	for _, step := range []float64{1, 2.5, 7} {
		t.Run(fmt.Sprintf("every %vs", step), func(t *testing.T) {
			impaired, _ := impairedRun(t, plan, step, 60)
			prev := map[string]float64{}
			for ms := 0; ms <= 60_000; ms += int(step * 1000) {
				for id, s := range impaired[ms] {
					for _, name := range append(cumulative, "freezeCount", "totalFreezesDuration", "pliCount", "concealmentEvents") {
						v, ok := s[name].(float64)
						if !ok {
							continue
						}
						if p, seen := prev[id+"."+name]; seen && v < p {
							t.Fatalf("at %dms %s.%s went from %v down to %v", ms, id, name, p, v)
						}
						prev[id+"."+name] = v
					}
				}
			}
		})
	}
}

func TestImpairedConnectionsAreTheFirstN(t *testing.T) {
	plan, err := ParseImpairments("relay")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		impaired int
		want     int
	}{
		{"the first three", 3, 3},
		{"0 means all", 0, 40},
		{"all, said explicitly", 40, 40},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			conns := newTestConnections(t, Options{Connections: 40, Channels: 2, Seed: 5, Impair: plan, Impaired: tt.impaired})
			for i, c := range conns {
				if got := c.Impairments() != nil; got != (i < tt.want) {
					t.Errorf("connection %d impaired: %t, want %t", i, got, i < tt.want)
				}
				if c.Impairments() != nil && c.Role != "sendrecv" {
					t.Errorf("impaired connection %d is %s, want sendrecv", i, c.Role)
				}
			}
		})
	}
	tmpl := newTestConnections(t, Options{Connections: 1, Channels: 1})[0].t
	for _, o := range []Options{
		{Connections: 2, Channels: 1, Impair: plan, Impaired: 3},
		{Connections: 2, Channels: 1, Impair: plan, Impaired: -1},
		{Connections: 2, Channels: 1, Impair: Impairments{{Kind: ImpairGap, End: EndOfRun}}},
	} {
		if _, err := NewConnections(tmpl, o, impairStart); err == nil {
			t.Errorf("NewConnections(%+v) succeeded, want an error", o)
		}
	}
}

func TestGapHoldsReportsBack(t *testing.T) {
	plan, err := ParseImpairments("gap@10s-20s")
	if err != nil {
		t.Fatal(err)
	}
	c := newTestConnections(t, Options{Connections: 1, Channels: 1, Impair: plan})[0]
	for s := 0; s <= 30; s += 5 {
		now := impairStart.Add(time.Duration(s) * time.Second)
		want := s >= 10 && s < 20
		if got := c.Silent(now); got != want {
			t.Errorf("Silent at %ds = %t, want %t", s, got, want)
		}
		if !c.Silent(now) {
			c.Webhook(now)
		}
	}
	if !c.Origin().Equal(impairStart) {
		t.Errorf("Origin() = %v, want the first call's time %v", c.Origin(), impairStart)
	}
}

func TestSteadyNetworkHasNoTrouble(t *testing.T) {
	conns := newTestConnections(t, Options{Connections: 30, Channels: 2, Seed: 8, Steady: true})
	for _, c := range conns {
		var prev statsByID
		for s := 0; s <= 300; s += 5 {
			r := statsByID{}
			for _, st := range decode(t, c.Webhook(impairStart.Add(time.Duration(s)*time.Second))).Stats {
				r[st["id"].(string)] = st
			}
			for id, st := range r {
				if v, _ := st["packetsLost"].(float64); v != 0 {
					t.Fatalf("connection %s at %ds: %s lost %v packets on a steady network", c.ClientID, s, id, v)
				}
				if v, _ := st["roundTripTime"].(float64); v > 0.05 {
					t.Fatalf("connection %s at %ds: %s roundTripTime %v s, want under 50 ms", c.ClientID, s, id, v)
				}
				if v, _ := st["jitter"].(float64); v > 0.01 {
					t.Fatalf("connection %s at %ds: %s jitter %v s, want under 10 ms", c.ClientID, s, id, v)
				}
				if w, ok := st["frameWidth"].(float64); ok && prev != nil && w != prev[id]["frameWidth"] {
					t.Fatalf("connection %s at %ds: frame width changed on a steady network", c.ClientID, s)
				}
			}
			prev = r
		}
	}
}
