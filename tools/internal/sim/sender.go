package sim

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"strings"
	"sync"
	"time"

	"kohaku/pkg/sora"
)

// Totals counts the requests of a Sender.
type Totals struct {
	Sent        int64         // requests started
	NoContent   int64         // answered 204: stored
	Other       int64         // answered with another status
	Errors      int64         // ended without an answer: connection failure, timeout
	Statuses    map[int]int64 // the other statuses and how often each came
	LastProblem string        // the latest other status or error, to show the operator why
}

// Done returns the number of requests that ended, answered or not.
func (t Totals) Done() int64 { return t.NoContent + t.Other + t.Errors }

// Failed returns the number of requests that ended without a 204.
func (t Totals) Failed() int64 { return t.Other + t.Errors }

// Sender posts the reports of one feed to a collector with at most a fixed number of
// requests in flight. Its methods are safe for concurrent use.
type Sender struct {
	client      *http.Client
	feed        Feed
	url         string
	concurrency int

	mu     sync.Mutex
	totals Totals
}

// NewSender returns a sender that posts the reports of feed to collectorURL with client,
// at most concurrency requests at a time. The client should speak the feed's protocol
// (ClientOptions.HTTP1 for the webhook).
func NewSender(client *http.Client, feed Feed, collectorURL string, concurrency int) *Sender {
	return &Sender{client: client, feed: feed, url: collectorURL, concurrency: max(concurrency, 1),
		totals: Totals{Statuses: map[int]int64{}}}
}

// job is one report to post.
type job struct {
	typ  string // its type, sent in the feed's header
	body []byte
}

// Run sends a report of every connection, and of node unless it is nil, each interval
// until ctx is done: connection.rtc reports on the webhook feed, which has no node report
// (a node is an error there), connection.user-agent and node.erlang-vm on the exporter
// feed. Like Sora, it spreads the connections' reports evenly over the interval rather
// than sending them in bursts. When the collector is slower than the schedule, reports
// wait for a free request slot, so the achieved rate shows its capacity. A connection's
// report is not sent while a gap of its plan holds it back (Connection.Silent). Run
// returns once the requests in flight have ended; they are not cancelled by ctx, only
// bounded by the client's timeout.
func (s *Sender) Run(ctx context.Context, conns []*Connection, node *Node, interval time.Duration) error {
	if interval <= 0 {
		return fmt.Errorf("sim: interval must be positive, got %s", interval)
	}
	if _, err := ParseFeed(string(s.feed)); err != nil {
		return err
	}
	if s.feed == FeedWebhook && node != nil {
		return errors.New("sim: the stats webhook has no node.erlang-vm report")
	}
	jobs := make(chan job)
	var wg sync.WaitGroup
	reqCtx := context.WithoutCancel(ctx)
	for range s.concurrency {
		wg.Go(func() {
			for j := range jobs {
				s.post(reqCtx, j)
			}
		})
	}
	defer wg.Wait()
	defer close(jobs)

	reports := len(conns)
	if node != nil {
		reports++
	}
	if reports == 0 {
		return nil
	}
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	start := time.Now()
	for tick := 0; ; tick++ {
		base := start.Add(time.Duration(tick) * interval)
		for i := range reports {
			due := base.Add(interval * time.Duration(i) / time.Duration(reports))
			if d := time.Until(due); d > 0 {
				timer.Reset(d)
				select {
				case <-ctx.Done():
					return nil
				case <-timer.C:
				}
			}
			var j job
			switch c, now := i-(reports-len(conns)), time.Now(); {
			case c < 0:
				j = job{typ: sora.TypeErlangVM, body: node.Report(now)}
			case conns[c].Silent(now):
				continue // a gap of its plan
			case s.feed == FeedWebhook:
				j = job{typ: sora.TypeConnectionRTC, body: conns[c].Webhook(now)}
			default:
				j = job{typ: sora.TypeUserAgent, body: conns[c].Report(now)}
			}
			select {
			case <-ctx.Done():
				return nil
			case jobs <- j:
			}
		}
	}
}

// post sends one report and counts its outcome.
func (s *Sender) post(ctx context.Context, j job) {
	s.count(func(t *Totals) { t.Sent++ })
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.url, bytes.NewReader(j.body))
	if err != nil {
		s.count(func(t *Totals) { t.Errors++; t.LastProblem = err.Error() })
		return
	}
	req.Header.Set("content-type", "application/json")
	req.Header.Set(s.feed.Header(), j.typ)
	req.Header.Set("user-agent", "kohaku-sora-sim")
	resp, err := s.client.Do(req)
	if err != nil {
		s.count(func(t *Totals) { t.Errors++; t.LastProblem = err.Error() })
		return
	}
	answer, _ := io.ReadAll(io.LimitReader(resp.Body, 256))
	resp.Body.Close()
	if resp.StatusCode == http.StatusNoContent {
		s.count(func(t *Totals) { t.NoContent++ })
		return
	}
	problem := fmt.Sprintf("%s: %s", resp.Status, strings.TrimSpace(string(answer)))
	s.count(func(t *Totals) { t.Other++; t.Statuses[resp.StatusCode]++; t.LastProblem = problem })
}

func (s *Sender) count(f func(*Totals)) {
	s.mu.Lock()
	f(&s.totals)
	s.mu.Unlock()
}

// Totals returns a snapshot of the counts so far.
func (s *Sender) Totals() Totals {
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.totals
	t.Statuses = maps.Clone(s.totals.Statuses)
	return t
}
