package sim

import (
	"fmt"

	"kohaku/pkg/sora"
)

// Feed is one of the two ways in which Sora sends stats (DESIGN.md section 2).
type Feed string

const (
	// FeedWebhook is the stats webhook of Sora 2025.1 and later (stats_webhook_url): one
	// connection.rtc report per connection, POSTed over HTTP/1.1 to /stats-webhook. It has
	// no node.erlang-vm report.
	FeedWebhook Feed = "webhook"
	// FeedExporter is the stats exporter of older Sora (stats_collector_url):
	// connection.user-agent reports and the node's node.erlang-vm report, POSTed over
	// HTTP/2 to /collector.
	FeedExporter Feed = "exporter"
)

// ParseFeed returns the feed named s: "webhook" or "exporter".
func ParseFeed(s string) (Feed, error) {
	switch f := Feed(s); f {
	case FeedWebhook, FeedExporter:
		return f, nil
	}
	return "", fmt.Errorf("sim: feed %q: want %s or %s", s, FeedWebhook, FeedExporter)
}

// DefaultURL returns where a Kohaku receiver on this machine takes the feed by default.
func (f Feed) DefaultURL() string {
	if f == FeedExporter {
		return "http://127.0.0.1:5890/collector"
	}
	return "http://127.0.0.1:5890/stats-webhook"
}

// Header returns the request header that names a report's type on the feed.
func (f Feed) Header() string {
	if f == FeedExporter {
		return sora.HeaderExporterType
	}
	return sora.HeaderWebhookType
}
