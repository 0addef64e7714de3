package sim

import (
	"context"
	"net/http"
	"testing"
	"time"
)

func TestRunSpreadsReportsOverTheInterval(t *testing.T) {
	tests := []struct {
		name        string
		status      int
		wantFailure bool
	}{
		{"collector stores everything", http.StatusNoContent, false},
		{"collector unavailable", http.StatusServiceUnavailable, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newCollector(t, "h2c", tt.status)
			client, err := NewClient(c.srv.URL+"/collector", ClientOptions{Timeout: 5 * time.Second})
			if err != nil {
				t.Fatal(err)
			}
			conns := newTestConnections(t, Options{Connections: 10, Channels: 2, Seed: 4})
			s := NewSender(client, FeedExporter, c.srv.URL+"/collector", 4)
			const interval = 100 * time.Millisecond
			ctx, cancel := context.WithTimeout(t.Context(), 3*interval+interval/2) // 3.5 rounds
			defer cancel()
			if err := s.Run(ctx, conns, NewNode(conns[0].t, 1), interval); err != nil {
				t.Fatalf("Run: %v", err)
			}
			got := s.Totals()
			// 11 reports a round (10 connections and the node): 3 full rounds and the first
			// half of the fourth, 39 if on time. Sending the fourth round in a burst would
			// make 44; a busy machine may fall a little behind.
			if got.Sent < 22 || got.Sent > 41 {
				t.Errorf("sent %d reports in 3.5 rounds of 11, want about 39, spread over each round", got.Sent)
			}
			if got.Done() != got.Sent {
				t.Errorf("Run returned with %d of %d requests still in flight", got.Sent-got.Done(), got.Sent)
			}
			if failed := got.Failed() > 0; failed != tt.wantFailure {
				t.Errorf("totals %+v: failure %t, want %t", got, failed, tt.wantFailure)
			}
			if tt.wantFailure && (got.Statuses[tt.status] != got.Sent || got.LastProblem == "") {
				t.Errorf("totals %+v: want every request counted under %d with the problem shown", got, tt.status)
			}
			close(c.arrivals)
			for a := range c.arrivals {
				if a.validateErr != nil || a.proto != "HTTP/2.0" {
					t.Fatalf("request over %s failed validation: %v", a.proto, a.validateErr)
				}
			}
		})
	}
}

func TestRunRejectsZeroInterval(t *testing.T) {
	s := NewSender(http.DefaultClient, FeedExporter, "http://127.0.0.1:1/collector", 1)
	if err := s.Run(t.Context(), nil, nil, 0); err == nil {
		t.Error("Run with interval 0 succeeded, want an error")
	}
}
