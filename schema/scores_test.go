package schema

import (
	"context"
	"math"
	"testing"
)

// The golden cases of the score functions, computed by hand from the formulas in
// analysis/SCORES.md, which shows each computation. A case changes only with a new score
// version: these numbers are what version 1 means.

// scoreReason is one element of a score's reasons: what lowered it, by how many points.
type scoreReason struct {
	Reason string  `json:"reason"`
	Impact float64 `json:"impact"`
}

// scoreTolerance is how far a computed figure may be from the hand-computed one: the hand
// computations keep four decimals, the reasons are rounded to three.
const scoreTolerance = 0.002

func TestAudioMOSMatchesTheHandComputedCases(t *testing.T) {
	tests := []struct {
		name                           string
		rttMS, jitterBufferMS          any // float64, or nil for NULL
		lossPercent, concealmentPercnt any
		wantR, wantMOS                 float64
		wantReasons                    []scoreReason
	}{
		{name: "perfect network scores the E-model's best", rttMS: 0.0, jitterBufferMS: 0.0, lossPercent: 0.0, concealmentPercnt: 0.0,
			wantR: 93.2, wantMOS: 4.4093},
		{name: "unknown figures count as unimpaired", rttMS: nil, jitterBufferMS: nil, lossPercent: nil, concealmentPercnt: nil,
			wantR: 93.2, wantMOS: 4.4093},
		{name: "200 ms round trip is 100 ms one way, where delay starts to count", rttMS: 200.0, jitterBufferMS: 0.0, lossPercent: 0.0, concealmentPercnt: 0.0,
			wantR: 93.2, wantMOS: 4.4093},
		{name: "200 ms round trip with a 60 ms jitter buffer", rttMS: 200.0, jitterBufferMS: 60.0, lossPercent: 0.0, concealmentPercnt: 0.0,
			wantR: 92.8122, wantMOS: 4.4017, wantReasons: []scoreReason{{"delay", 0.008}}},
		{name: "400 ms round trip is 200 ms one way", rttMS: 400.0, jitterBufferMS: 0.0, lossPercent: 0.0, concealmentPercnt: 0.0,
			wantR: 90.1556, wantMOS: 4.3428, wantReasons: []scoreReason{{"delay", 0.066}}},
		{name: "400 ms one way", rttMS: 300.0, jitterBufferMS: 250.0, lossPercent: 0.0, concealmentPercnt: 0.0,
			wantR: 69.1299, wantMOS: 3.5559, wantReasons: []scoreReason{{"delay", 0.853}}},
		{name: "1 % random loss", rttMS: 0.0, jitterBufferMS: 0.0, lossPercent: 1.0, concealmentPercnt: 0.0,
			wantR: 89.5602, wantMOS: 4.3281, wantReasons: []scoreReason{{"packet-loss", 0.081}}},
		{name: "5 % random loss", rttMS: 0.0, jitterBufferMS: 0.0, lossPercent: 5.0, concealmentPercnt: 0.0,
			wantR: 77.4193, wantMOS: 3.9228, wantReasons: []scoreReason{{"packet-loss", 0.486}}},
		{name: "3 % concealment without network loss", rttMS: 0.0, jitterBufferMS: 0.0, lossPercent: 0.0, concealmentPercnt: 3.0,
			wantR: 83.0577, wantMOS: 4.1341, wantReasons: []scoreReason{{"concealment", 0.275}}},
		{name: "concealment beyond the loss is counted once", rttMS: 40.0, jitterBufferMS: 20.0, lossPercent: 1.0, concealmentPercnt: 3.0,
			wantR: 83.0577, wantMOS: 4.1341, wantReasons: []scoreReason{{"concealment", 0.176}, {"packet-loss", 0.099}}},
		{name: "concealment equal to the loss adds nothing", rttMS: 100.0, jitterBufferMS: 40.0, lossPercent: 20.0, concealmentPercnt: 20.0,
			wantR: 51.0714, wantMOS: 2.6313, wantReasons: []scoreReason{{"packet-loss", 1.778}}},
		{name: "delay, loss and concealment together", rttMS: 400.0, jitterBufferMS: 100.0, lossPercent: 2.0, concealmentPercnt: 4.0,
			wantR: 65.3809, wantMOS: 3.3736, wantReasons: []scoreReason{{"delay", 0.550}, {"packet-loss", 0.261}, {"concealment", 0.225}}},
		{name: "a hopeless call stops at MOS 1 and R 0", rttMS: 2000.0, jitterBufferMS: 500.0, lossPercent: 50.0, concealmentPercnt: 80.0,
			wantR: 0, wantMOS: 1, wantReasons: []scoreReason{{"packet-loss", 1.809}, {"delay", 1.342}, {"concealment", 0.259}}},
	}
	for _, db := range databases {
		t.Run(db.name, func(t *testing.T) {
			c := freshConn(t, db.url(t))
			mustMigrate(t, c, Options{})
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					var mos, r float64
					var reasons []scoreReason
					err := c.QueryRow(context.Background(),
						"SELECT mos, r_factor, reasons FROM kohaku_audio_mos_v1($1, $2, $3, $4)",
						tt.rttMS, tt.jitterBufferMS, tt.lossPercent, tt.concealmentPercnt).Scan(&mos, &r, &reasons)
					if err != nil {
						t.Fatal(err)
					}
					if !near(r, tt.wantR) {
						t.Errorf("R = %.4f, want %.4f", r, tt.wantR)
					}
					if !near(mos, tt.wantMOS) {
						t.Errorf("MOS = %.4f, want %.4f", mos, tt.wantMOS)
					}
					checkReasons(t, reasons, tt.wantReasons, 4.4093-mos)
				})
			}
		})
	}
}

func TestVideoScoreMatchesTheHandComputedCases(t *testing.T) {
	// videoInput is the arguments of kohaku_video_score_v1, in its order.
	type videoInput struct {
		fps, refFPS, width, height, refWidth, refHeight, freezes, frozenSeconds, intervalSeconds, bandwidthShare, cpuShare any
	}
	clean := func(change func(*videoInput)) videoInput {
		in := videoInput{30.0, 30.0, 1280.0, 720.0, 1280.0, 720.0, 0.0, 0.0, 60.0, 0.0, 0.0}
		if change != nil {
			change(&in)
		}
		return in
	}
	tests := []struct {
		name        string
		in          videoInput
		want        float64
		wantReasons []scoreReason
	}{
		{name: "full frame rate and resolution without freezes scores 5", in: clean(nil), want: 5},
		{name: "unknown figures count as unimpaired",
			in: videoInput{nil, nil, nil, nil, nil, nil, nil, nil, nil, nil, nil}, want: 5},
		{name: "a frame rate within 10 % of the reference costs nothing", in: clean(func(v *videoInput) { v.fps = 27.5 }), want: 5},
		{name: "one 1 s freeze in a minute", in: clean(func(v *videoInput) { v.fps = 29.5; v.freezes = 1.0; v.frozenSeconds = 1.0 }),
			want: 4.6667, wantReasons: []scoreReason{{"freeze", 0.333}}},
		{name: "two freezes of 3 s in a 30 s interval", in: clean(func(v *videoInput) { v.freezes = 2.0; v.frozenSeconds = 3.0; v.intervalSeconds = 30.0; v.fps = 27.0 }),
			want: 3.4, wantReasons: []scoreReason{{"freeze", 1.600}}},
		{name: "half the width and height", in: clean(func(v *videoInput) { v.width = 640.0; v.height = 360.0 }),
			want: 4.25, wantReasons: []scoreReason{{"low-resolution", 0.750}}},
		{name: "half the frame rate", in: clean(func(v *videoInput) { v.fps = 15.0 }),
			want: 4.152, wantReasons: []scoreReason{{"low-frame-rate", 0.848}}},
		{name: "no frame at all and no freeze reported", in: clean(func(v *videoInput) { v.fps = 0.0 }),
			want: 3, wantReasons: []scoreReason{{"low-frame-rate", 2}}},
		{name: "limited by bandwidth all minute, at half resolution", in: clean(func(v *videoInput) { v.width = 640.0; v.height = 360.0; v.bandwidthShare = 1.0 }),
			want: 3.75, wantReasons: []scoreReason{{"low-resolution", 0.750}, {"quality-limited-bandwidth", 0.500}}},
		{name: "limited by CPU 40 % of the time", in: clean(func(v *videoInput) { v.cpuShare = 0.4 }),
			want: 4.8, wantReasons: []scoreReason{{"quality-limited-cpu", 0.200}}},
		{name: "frozen the whole minute", in: clean(func(v *videoInput) { v.fps = 0.0; v.freezes = 10.0; v.frozenSeconds = 60.0 }),
			want: 2, wantReasons: []scoreReason{{"freeze", 3}}},
		{name: "freezes, lower rate and resolution and bandwidth together", in: videoInput{15.0, 30.0, 640.0, 360.0, 1280.0, 720.0, 2.0, 3.0, 60.0, 0.5, 0.0},
			want: 2.426, wantReasons: []scoreReason{{"freeze", 0.800}, {"low-frame-rate", 0.774}, {"low-resolution", 0.750}, {"quality-limited-bandwidth", 0.250}}},
		{name: "impacts beyond 4 points are scaled to stop at 1", in: videoInput{0.0, 30.0, 320.0, 180.0, 1280.0, 720.0, 10.0, 60.0, 60.0, 1.0, 0.0},
			want: 1, wantReasons: []scoreReason{{"freeze", 2.400}, {"low-resolution", 1.200}, {"quality-limited-bandwidth", 0.400}}},
	}
	for _, db := range databases {
		t.Run(db.name, func(t *testing.T) {
			c := freshConn(t, db.url(t))
			mustMigrate(t, c, Options{})
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					in := tt.in
					var score float64
					var reasons []scoreReason
					err := c.QueryRow(context.Background(),
						"SELECT score, reasons FROM kohaku_video_score_v1($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
						in.fps, in.refFPS, in.width, in.height, in.refWidth, in.refHeight,
						in.freezes, in.frozenSeconds, in.intervalSeconds, in.bandwidthShare, in.cpuShare).Scan(&score, &reasons)
					if err != nil {
						t.Fatal(err)
					}
					if !near(score, tt.want) {
						t.Errorf("score = %.4f, want %.4f", score, tt.want)
					}
					checkReasons(t, reasons, tt.wantReasons, 5-score)
				})
			}
		})
	}
}

// The functions are declared IMMUTABLE, so that a planner may fold them and an index may
// use them; they must then depend on nothing but their arguments.
func TestScoreFunctionsAreImmutableAndVersioned(t *testing.T) {
	c := freshConn(t, postgresURL(t))
	mustMigrate(t, c, Options{})
	for _, fn := range []string{"kohaku_audio_mos_v1", "kohaku_video_score_v1"} {
		var volatility string
		err := c.QueryRow(context.Background(),
			"SELECT provolatile::text FROM pg_proc WHERE proname = $1 AND pronamespace = current_schema()::regnamespace", fn).Scan(&volatility)
		if err != nil {
			t.Fatalf("look up %s: %v", fn, err)
		}
		if volatility != "i" {
			t.Errorf("%s: volatility %q, want i (IMMUTABLE)", fn, volatility)
		}
	}
}

// checkReasons compares reasons with want, in order, impacts within scoreTolerance, and
// checks that they add up to drop, the points below the best score.
func checkReasons(t *testing.T, got, want []scoreReason, drop float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("reasons %v, want %v", got, want)
		return
	}
	sum := 0.0
	for i := range want {
		if got[i].Reason != want[i].Reason || !near(got[i].Impact, want[i].Impact) {
			t.Errorf("reason %d = %+v, want %+v (all: %v)", i, got[i], want[i], got)
		}
		sum += got[i].Impact
	}
	// Each impact is rounded to three decimals.
	if math.Abs(sum-drop) > 0.0005*float64(len(got))+0.0001 {
		t.Errorf("impacts add up to %.4f, want the drop %.4f", sum, drop)
	}
}

func near(x, y float64) bool { return math.Abs(x-y) <= scoreTolerance }
