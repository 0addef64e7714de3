package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"kohaku/pkg/sora"
	"kohaku/tools/internal/sim"
)

func TestParseFlags(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		want    func(config) bool // nil: only that parsing succeeds
		wantErr string
	}{
		{"defaults: the webhook over HTTP/1.1 to /stats-webhook, no node report", nil, func(c config) bool {
			return c.feed == sim.FeedWebhook && c.url == "http://127.0.0.1:5890/stats-webhook" && c.client.HTTP1 && !c.erlangVM &&
				c.client.BasicAuthUser == ""
		}, ""},
		{"exporter: HTTP/2 to /collector with the node report", []string{"--feed", "exporter"}, func(c config) bool {
			return c.feed == sim.FeedExporter && c.url == "http://127.0.0.1:5890/collector" && !c.client.HTTP1 && c.erlangVM
		}, ""},
		{"exporter without the node report", []string{"--feed", "exporter", "--erlang-vm=false"}, func(c config) bool {
			return !c.erlangVM
		}, ""},
		{"webhook over TLS stays HTTP/1.1", []string{"--url", "https://kohaku:5890/stats-webhook", "--ca", "ca.pem"}, func(c config) bool {
			return c.url == "https://kohaku:5890/stats-webhook" && c.client.HTTP1 && c.client.CAFile == "ca.pem"
		}, ""},
		{"Basic authentication", []string{"--basic-auth", "sora:pa:ss"}, func(c config) bool {
			return c.client.BasicAuthUser == "sora" && c.client.BasicAuthPassword == "pa:ss"
		}, ""},
		{"Basic authentication on the exporter", []string{"--feed", "exporter", "--basic-auth", "sora:secret"}, func(c config) bool {
			return c.client.BasicAuthUser == "sora" && c.client.BasicAuthPassword == "secret" && !c.client.HTTP1
		}, ""},
		{"webhook without the node report, said explicitly", []string{"--erlang-vm=false"}, func(c config) bool { return !c.erlangVM }, ""},
		{"all set", []string{"--feed", "exporter", "--url", "https://kohaku:5890/collector", "--connections", "5", "--interval", "1s",
			"--duration", "1m", "--concurrency", "2", "--ca", "ca.pem", "--cert", "c.pem", "--key", "k.pem"}, nil, ""},
		{"unknown feed", []string{"--feed", "collector"}, nil, "--feed"},
		{"node report asked of the webhook", []string{"--erlang-vm"}, nil, "--erlang-vm"},
		{"Basic authentication without a colon", []string{"--basic-auth", "sora"}, nil, "--basic-auth"},
		{"Basic authentication without a user", []string{"--basic-auth", ":secret"}, nil, "--basic-auth"},
		{"no connections", []string{"--connections", "0"}, nil, "--connections"},
		{"zero interval", []string{"--interval", "0s"}, nil, "--interval"},
		{"negative duration", []string{"--duration", "-1s"}, nil, "--duration"},
		{"no concurrency", []string{"--concurrency", "0"}, nil, "--concurrency"},
		{"stray argument", []string{"extra"}, nil, "unexpected"},
		{"no impairment: a network with random trouble", nil, func(c config) bool { return c.impair == nil && !c.steady }, ""},
		{"impairment plan on the first two connections, steady network implied",
			[]string{"--connections", "5", "--impair", "loss=10%@60s-90s,relay", "--impair-connections", "2"}, func(c config) bool {
				return c.impair.String() == "loss=10%@1m0s-1m30s,relay" && c.impaired == 2 && c.steady
			}, ""},
		{"impairments over random trouble", []string{"--impair", "relay", "--steady=false"}, func(c config) bool {
			return len(c.impair) == 1 && !c.steady
		}, ""},
		{"steady network without impairments", []string{"--steady"}, func(c config) bool { return c.impair == nil && c.steady }, ""},
		{"bad impairment plan", []string{"--impair", "loss=10"}, nil, "--impair: sim: impairment"},
		{"impaired connections without a plan", []string{"--impair-connections", "2"}, nil, "no --impair plan"},
		{"more impaired connections than connections", []string{"--connections", "2", "--impair", "relay", "--impair-connections", "3"}, nil, "--impair-connections"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseFlags(tt.args, io.Discard)
			if tt.wantErr == "" && err != nil {
				t.Fatalf("parseFlags(%q): %v", tt.args, err)
			}
			if tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Fatalf("parseFlags(%q) = %v, want an error about %s", tt.args, err, tt.wantErr)
			}
			if tt.want != nil && !tt.want(got) {
				t.Errorf("parseFlags(%q) = %+v, not what the flags say", tt.args, got)
			}
		})
	}
}

// TestRunSendsTheWebhook runs sora-sim's default feed, with --basic-auth, against a server
// that also takes h2c: what arrives must be what Sora's stats webhook sends.
func TestRunSendsTheWebhook(t *testing.T) {
	type arrival struct {
		proto, webhookType, exporterType, authorization string
		user, password                                  string
		validateErr                                     error
	}
	arrivals := make(chan arrival, 1000)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		a := arrival{proto: r.Proto, webhookType: r.Header.Get(sora.HeaderWebhookType),
			exporterType: r.Header.Get(sora.HeaderExporterType), authorization: r.Header.Get("authorization"),
			validateErr: sora.Validate(sora.TypeConnectionRTC, body)}
		a.user, a.password, _ = r.BasicAuth()
		select {
		case arrivals <- a:
		default:
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	srv.Config.Protocols = new(http.Protocols)
	srv.Config.Protocols.SetHTTP1(true)
	srv.Config.Protocols.SetUnencryptedHTTP2(true)
	srv.Start()
	defer srv.Close()
	cfg, err := parseFlags([]string{"--url", srv.URL + "/stats-webhook", "--basic-auth", "sora:secret",
		"--connections", "3", "--interval", "200ms", "--duration", "500ms", "--seed", "1"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	totals, err := run(t.Context(), cfg, &out)
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	if totals.Sent < 3 || totals.NoContent != totals.Sent {
		t.Fatalf("totals %+v: want every report answered 204", totals)
	}
	if !strings.Contains(out.String(), "connection.rtc over HTTP/1.1") {
		t.Errorf("the first line does not say what is sent:\n%s", out.String())
	}
	close(arrivals)
	for a := range arrivals {
		if a.proto != "HTTP/1.1" {
			t.Errorf("arrived over %s, want HTTP/1.1", a.proto)
		}
		if a.webhookType != sora.TypeConnectionRTC || a.exporterType != "" {
			t.Errorf("%s %q, %s %q; want %q and none", sora.HeaderWebhookType, a.webhookType,
				sora.HeaderExporterType, a.exporterType, sora.TypeConnectionRTC)
		}
		if a.validateErr != nil {
			t.Errorf("body fails sora.Validate: %v", a.validateErr)
		}
		if !strings.HasPrefix(a.authorization, "Basic ") || a.user != "sora" || a.password != "secret" {
			t.Errorf("authorization %q (%q, %q), want Basic sora:secret", a.authorization, a.user, a.password)
		}
	}
}

func TestRunReportsFailures(t *testing.T) {
	tests := []struct {
		name       string
		feed       string
		status     int
		wantFailed bool
	}{
		{"every webhook stored", "webhook", http.StatusNoContent, false},
		{"webhook answered 503", "webhook", http.StatusServiceUnavailable, true},
		{"every exporter report stored", "exporter", http.StatusNoContent, false},
		{"exporter answered 503", "exporter", http.StatusServiceUnavailable, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				io.Copy(io.Discard, r.Body)
				w.WriteHeader(tt.status)
			}))
			srv.Config.Protocols = new(http.Protocols)
			srv.Config.Protocols.SetHTTP1(true)
			srv.Config.Protocols.SetUnencryptedHTTP2(true)
			srv.Start()
			defer srv.Close()
			cfg, err := parseFlags([]string{"--feed", tt.feed, "--url", srv.URL + "/collector", "--connections", "4",
				"--interval", "200ms", "--duration", "1100ms", "--seed", "1"}, io.Discard)
			if err != nil {
				t.Fatal(err)
			}
			var out bytes.Buffer
			totals, err := run(t.Context(), cfg, &out)
			if err != nil {
				t.Fatalf("run: %v", err)
			}
			if totals.Sent == 0 || totals.Done() != totals.Sent {
				t.Errorf("totals %+v: want reports sent and all of them ended", totals)
			}
			if got := totals.Failed() > 0; got != tt.wantFailed {
				t.Errorf("totals %+v: failed %t, want %t", totals, got, tt.wantFailed)
			}
			if !strings.Contains(out.String(), " sent ") || !strings.Contains(out.String(), "req/s") {
				t.Errorf("no progress line in output:\n%s", out.String())
			}
		})
	}
}

func TestProgressLine(t *testing.T) {
	prev := sim.Totals{Sent: 10, NoContent: 10}
	now := sim.Totals{Sent: 30, NoContent: 25, Other: 3, Errors: 1,
		Statuses: map[int]int64{503: 2, 400: 1}, LastProblem: "503 Service Unavailable: {}"}
	got := progress(now, prev, 3*time.Second, time.Second)
	for _, want := range []string{"3s", "sent 30", "204 25", "other 3 (400×1 503×2)", "errors 1", "19.0 req/s", "last: 503"} {
		if !strings.Contains(got, want) {
			t.Errorf("progress line %q lacks %q", got, want)
		}
	}
}

// TestRunImpairsTheFirstConnections runs sora-sim with --impair on one of two connections:
// the reports of the first show the planned trouble in its windows, those of the second
// none of it.
func TestRunImpairsTheFirstConnections(t *testing.T) {
	type report struct {
		ClientID  string           `json:"client_id"`
		Timestamp time.Time        `json:"timestamp"`
		Stats     []map[string]any `json:"stats"`
	}
	reports := make(chan report, 1000)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var rep report
		if err := json.Unmarshal(body, &rep); err != nil {
			t.Errorf("report is not JSON: %v", err)
		}
		select {
		case reports <- rep:
		default:
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()
	cfg, err := parseFlags([]string{"--url", srv.URL + "/stats-webhook", "--connections", "2", "--interval", "100ms",
		"--duration", "1100ms", "--seed", "3", "--impair", "relay,rtt=600ms@300ms-,gap@500ms-800ms", "--impair-connections", "1"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if _, err := run(t.Context(), cfg, &out); err != nil {
		t.Fatalf("run: %v", err)
	}
	if !strings.Contains(out.String(), "impairing sora-sim-client-00001 to sora-sim-client-00001: relay,rtt=600ms@300ms-,gap@500ms-800ms") {
		t.Errorf("the output does not name the plan and the impaired connections:\n%s", out.String())
	}
	close(reports)
	var all []report
	origin := map[string]time.Time{} // each connection's first report
	for r := range reports {
		if o, ok := origin[r.ClientID]; !ok || r.Timestamp.Before(o) {
			origin[r.ClientID] = r.Timestamp
		}
		all = append(all, r)
	}
	seen := map[string]int{}
	for _, r := range all {
		offset := r.Timestamp.Sub(origin[r.ClientID])
		impaired := r.ClientID == "sora-sim-client-00001"
		seen[r.ClientID]++
		if impaired && offset >= 500*time.Millisecond && offset < 800*time.Millisecond {
			t.Errorf("%s sent a report at %s, in its gap", r.ClientID, offset)
		}
		byID := map[string]map[string]any{}
		for _, s := range r.Stats {
			byID[s["id"].(string)] = s
		}
		for _, s := range r.Stats {
			if s["type"] != "transport" {
				continue
			}
			pair := byID[s["selectedCandidatePairId"].(string)]
			local := byID[pair["localCandidateId"].(string)]
			if relay := local["candidateType"] == "relay"; relay != impaired {
				t.Errorf("%s at %s: local candidate %v, want relay only on the impaired connection", r.ClientID, offset, local["candidateType"])
			}
			rtt := pair["currentRoundTripTime"].(float64)
			if want := impaired && offset >= 300*time.Millisecond; (rtt == 0.6) != want {
				t.Errorf("%s at %s: currentRoundTripTime %v, want 0.6 %t", r.ClientID, offset, rtt, want)
			}
		}
	}
	if seen["sora-sim-client-00001"] < 4 || seen["sora-sim-client-00002"] <= seen["sora-sim-client-00001"] {
		t.Errorf("reports by connection %v: want several of each, fewer of the one with a gap", seen)
	}
}
