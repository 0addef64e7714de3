package sim

import (
	"context"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"strings"
	"testing"
	"time"

	"kohaku/pkg/sora"
)

func TestParseFeed(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    Feed
		wantErr bool
	}{
		{"webhook", "webhook", FeedWebhook, false},
		{"exporter", "exporter", FeedExporter, false},
		{"empty", "", "", true},
		{"another word", "collector", "", true},
		{"case matters", "Webhook", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseFeed(tt.in)
			if got != tt.want || (err != nil) != tt.wantErr {
				t.Errorf("ParseFeed(%q) = %q, %v; want %q, error %t", tt.in, got, err, tt.want, tt.wantErr)
			}
		})
	}
}

func TestParseBasicAuth(t *testing.T) {
	tests := []struct {
		name, in, user, password string
		wantErr                  bool
	}{
		{"user and password", "sora:secret", "sora", "secret", false},
		{"colons belong to the password", "sora:a:b:", "sora", "a:b:", false},
		{"empty password", "sora:", "sora", "", false},
		{"no colon", "sora", "", "", true},
		{"no user", ":secret", "", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			user, password, err := ParseBasicAuth(tt.in)
			if user != tt.user || password != tt.password || (err != nil) != tt.wantErr {
				t.Errorf("ParseBasicAuth(%q) = %q, %q, %v; want %q, %q, error %t",
					tt.in, user, password, err, tt.user, tt.password, tt.wantErr)
			}
		})
	}
}

// webhookEnvelope is what the tests check of a connection.rtc body.
type webhookEnvelope struct {
	Type         string           `json:"type"`
	ID           string           `json:"id"`
	Version      string           `json:"version"`
	GroupID      *string          `json:"group_id"`
	BundleID     *string          `json:"bundle_id"`
	ConnectionID string           `json:"connection_id"`
	Multistream  *bool            `json:"multistream"`
	Stats        []map[string]any `json:"stats"`
}

// TestWebhookFeedArrivesOverHTTP1 runs the webhook feed against servers that would take
// HTTP/2 too: every request must come over HTTP/1.1, as Sora's webhooks do, with the
// webhook's header, a connection.rtc body of its own id, and Basic credentials when asked.
func TestWebhookFeedArrivesOverHTTP1(t *testing.T) {
	tests := []struct {
		name           string
		mode           string
		user, password string
	}{
		{"cleartext", "h1", "", ""},
		{"TLS", "h1-tls", "", ""},
		{"cleartext with Basic authentication", "h1", "sora", "s3cret:with colon"},
		{"TLS with Basic authentication", "h1-tls", "sora", "secret"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newCollector(t, tt.mode, http.StatusNoContent)
			o := ClientOptions{HTTP1: true, BasicAuthUser: tt.user, BasicAuthPassword: tt.password, Timeout: 5 * time.Second}
			if tt.mode == "h1-tls" {
				o.CAFile = writePEM(t, t.TempDir(), "ca.pem", &pem.Block{Type: "CERTIFICATE", Bytes: c.srv.Certificate().Raw})
			}
			url := c.srv.URL + "/stats-webhook"
			client, err := NewClient(url, o)
			if err != nil {
				t.Fatalf("NewClient: %v", err)
			}
			conns := newTestConnections(t, Options{Connections: 6, Channels: 2, Seed: 2})
			s := NewSender(client, FeedWebhook, url, 3)
			const interval = 100 * time.Millisecond
			ctx, cancel := context.WithTimeout(t.Context(), 2*interval+interval/2)
			defer cancel()
			if err := s.Run(ctx, conns, nil, interval); err != nil {
				t.Fatalf("Run: %v", err)
			}
			got := s.Totals()
			if got.Sent < 6 || got.NoContent != got.Sent {
				t.Fatalf("totals %+v, want at least a round of 6 answered 204", got)
			}
			close(c.arrivals)
			ids := map[string]bool{}
			for a := range c.arrivals {
				if a.proto != "HTTP/1.1" || a.tls != (tt.mode == "h1-tls") {
					t.Errorf("request over %s, TLS %t; want HTTP/1.1, TLS %t", a.proto, a.tls, tt.mode == "h1-tls")
				}
				if a.webhookType != sora.TypeConnectionRTC || a.exporterType != "" || a.contentType != "application/json" {
					t.Errorf("headers %s %q, %s %q, content-type %q; want %q, none, application/json",
						sora.HeaderWebhookType, a.webhookType, sora.HeaderExporterType, a.exporterType, a.contentType, sora.TypeConnectionRTC)
				}
				if a.validateErr != nil {
					t.Errorf("body fails sora.Validate(%s): %v", sora.TypeConnectionRTC, a.validateErr)
				}
				if a.basicAuth != (tt.user != "") || a.user != tt.user || a.password != tt.password {
					t.Errorf("Basic credentials %t %q %q, want %t %q %q", a.basicAuth, a.user, a.password, tt.user != "", tt.user, tt.password)
				}
				var env webhookEnvelope
				if err := json.Unmarshal(a.body, &env); err != nil {
					t.Fatalf("body is not JSON: %v", err)
				}
				if len(env.ID) != IDLen || strings.Trim(env.ID, crockford) != "" || ids[env.ID] {
					t.Errorf("id %q: want 26 Crockford base32 characters, new for each request", env.ID)
				}
				ids[env.ID] = true
				if env.GroupID == nil || *env.GroupID == "" || env.BundleID == nil || *env.BundleID != env.ConnectionID {
					t.Errorf("group_id %v, bundle_id %v: want a group and the connection's bundle", env.GroupID, env.BundleID)
				}
				if env.Multistream != nil || !strings.HasPrefix(env.Version, "2025.2") {
					t.Errorf("multistream %v with version %s: Sora 2025.2 sends none", env.Multistream, env.Version)
				}
				if len(env.Stats) == 0 {
					t.Error("no stats")
				}
			}
		})
	}
}

// TestExporterFeedSendsBasicAuthentication checks that --basic-auth applies to the
// exporter feed too, over h2c.
func TestExporterFeedSendsBasicAuthentication(t *testing.T) {
	c := newCollector(t, "h2c", http.StatusNoContent)
	url := c.srv.URL + "/collector"
	client, err := NewClient(url, ClientOptions{BasicAuthUser: "sora", BasicAuthPassword: "secret"})
	if err != nil {
		t.Fatal(err)
	}
	conns := newTestConnections(t, Options{Connections: 1, Channels: 1, Seed: 1})
	s := NewSender(client, FeedExporter, url, 1)
	s.post(t.Context(), job{sora.TypeUserAgent, conns[0].Report(time.Now())})
	a := <-c.arrivals
	if a.proto != "HTTP/2.0" || a.user != "sora" || a.password != "secret" || a.validateErr != nil {
		t.Errorf("arrived over %s with credentials %q %q (%v); want HTTP/2.0, sora, secret, valid", a.proto, a.user, a.password, a.validateErr)
	}
}

func TestRunRejectsNodeOnTheWebhook(t *testing.T) {
	conns := newTestConnections(t, Options{Connections: 1, Channels: 1, Seed: 1})
	s := NewSender(http.DefaultClient, FeedWebhook, "http://127.0.0.1:1/stats-webhook", 1)
	if err := s.Run(t.Context(), conns, NewNode(conns[0].t, 1), time.Second); err == nil {
		t.Error("Run of the webhook feed with a node succeeded, want an error: the webhook has no node.erlang-vm")
	}
	if got := s.Totals(); got.Sent != 0 {
		t.Errorf("sent %d requests before refusing", got.Sent)
	}
}
