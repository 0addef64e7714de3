package sim

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestParseImpairmentsReadsPlans(t *testing.T) {
	tests := []struct {
		name string
		plan string
		want Impairments
	}{
		{"empty plan: no impairment", "  ", nil},
		{"the example of the README", "loss=10%@60s-90s,freeze@120s,rtt=600ms@150s-170s,relay,cpu@200s-230s", Impairments{
			{Kind: ImpairLoss, Percent: 10, Start: 60 * time.Second, End: 90 * time.Second},
			{Kind: ImpairFreeze, Start: 120 * time.Second, End: 121 * time.Second},
			{Kind: ImpairRTT, Delay: 600 * time.Millisecond, Start: 150 * time.Second, End: 170 * time.Second},
			{Kind: ImpairRelay, End: EndOfRun},
			{Kind: ImpairCPU, Start: 200 * time.Second, End: 230 * time.Second},
		}},
		{"open window and spaces", " jitter=40ms@1m30s- , remoteloss=2.5%", Impairments{
			{Kind: ImpairJitter, Delay: 40 * time.Millisecond, Start: 90 * time.Second, End: EndOfRun},
			{Kind: ImpairRemoteLoss, Percent: 2.5, End: EndOfRun},
		}},
		{"states, stop, tcp, gap, conceal and bandwidth", "ice=disconnected@10s-20s,dtls=failed@30s-40s,stop@0s-5s,tcp,gap@50s-65s,conceal=100%@1m-2m,bandwidth@2m-3m", Impairments{
			{Kind: ImpairICE, State: "disconnected", Start: 10 * time.Second, End: 20 * time.Second},
			{Kind: ImpairDTLS, State: "failed", Start: 30 * time.Second, End: 40 * time.Second},
			{Kind: ImpairStop, Start: 0, End: 5 * time.Second},
			{Kind: ImpairTCP, End: EndOfRun},
			{Kind: ImpairGap, Start: 50 * time.Second, End: 65 * time.Second},
			{Kind: ImpairConceal, Percent: 100, Start: time.Minute, End: 2 * time.Minute},
			{Kind: ImpairBandwidth, Start: 2 * time.Minute, End: 3 * time.Minute},
		}},
		{"freeze over a window and whole-run freeze elsewhere in time", "freeze@10s-25s,loss=1%@0s-10s,loss=3%@10s-", Impairments{
			{Kind: ImpairFreeze, Start: 10 * time.Second, End: 25 * time.Second},
			{Kind: ImpairLoss, Percent: 1, End: 10 * time.Second},
			{Kind: ImpairLoss, Percent: 3, Start: 10 * time.Second, End: EndOfRun},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseImpairments(tt.plan)
			if err != nil {
				t.Fatalf("ParseImpairments(%q): %v", tt.plan, err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("ParseImpairments(%q)\n got %#v\nwant %#v", tt.plan, got, tt.want)
			}
			again, err := ParseImpairments(got.String())
			if err != nil || !reflect.DeepEqual(again, got) {
				t.Errorf("String %q does not read back: %v, %#v", got.String(), err, again)
			}
		})
	}
}

func TestParseImpairmentsRejectsBadPlans(t *testing.T) {
	tests := []struct {
		name    string
		plan    string
		wantErr string
	}{
		{"unknown kind", "lag=5s", `unknown kind "lag"`},
		{"empty item", "relay,,tcp", "empty"},
		{"loss without percent sign", "loss=10", "percent"},
		{"loss without value", "loss@1s-2s", "percent"},
		{"loss of everything", "loss=100%", "below 100 (stop stops the media)"},
		{"loss of nothing", "loss=0%", "above 0"},
		{"concealment above 100%", "conceal=120%", "at most 100"},
		{"rtt that is not a duration", "rtt=600", `duration "600"`},
		{"negative jitter", "jitter=-5ms", "positive"},
		{"value on a kind without one", "relay=turn", "relay takes no value"},
		{"connected is no ICE trouble", "ice=connected@1s-2s", "want one of new, checking, disconnected, failed, closed"},
		{"unknown DTLS state", "dtls=broken", "want one of new, connecting, closed, failed"},
		{"window ending before it starts", "cpu@90s-60s", "ends before it starts"},
		{"empty window", "cpu@60s-60s", "ends before it starts"},
		{"time without unit", "stop@60-90s", `time "60"`},
		{"single time for a state", "rtt=600ms@150s", "single time suits only freeze"},
		{"gap without window", "gap", "needs a window"},
		{"overlapping windows of one kind", "loss=5%@10s-30s,loss=8%@20s-40s", "overlaps"},
		{"cpu and bandwidth at once", "cpu@10s-30s,bandwidth@20s-40s", "overlaps"},
		{"freeze during a freeze", "freeze@10s-20s,freeze@15s", "overlaps"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseImpairments(tt.plan)
			if err == nil {
				t.Fatalf("ParseImpairments(%q) = %v, want an error about %s", tt.plan, got, tt.wantErr)
			}
			if !strings.Contains(err.Error(), tt.wantErr) || !strings.HasPrefix(err.Error(), "sim: impairment") {
				t.Errorf("ParseImpairments(%q): %v, want a sim: impairment error about %s", tt.plan, err, tt.wantErr)
			}
		})
	}
}

func TestImpairmentsValidateBuiltPlans(t *testing.T) {
	tests := []struct {
		name    string
		plan    Impairments
		wantErr string // "" for a valid plan
	}{
		{"valid", Impairments{{Kind: ImpairLoss, Percent: 10, Start: time.Second, End: EndOfRun}}, ""},
		{"zero window", Impairments{{Kind: ImpairRelay}}, "empty or negative"},
		{"no kind", Impairments{{End: EndOfRun}}, "unknown kind"},
		{"rtt without delay", Impairments{{Kind: ImpairRTT, End: EndOfRun}}, "want above 0"},
		{"ice without state", Impairments{{Kind: ImpairICE, End: EndOfRun}}, "want one of"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.plan.Validate()
			if tt.wantErr == "" && err != nil || tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Errorf("Validate() = %v, want %q", err, tt.wantErr)
			}
		})
	}
}
