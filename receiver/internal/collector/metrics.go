package collector

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"kohaku/pkg/sora"
)

// metrics are the receiver's Prometheus series. Labels stay low-cardinality: the
// exporter_type label (the message type, of either feed) is one of the known types or
// "unknown", never a channel or connection id.
type metrics struct {
	requests  *prometheus.CounterVec   // exporter_type, code
	duration  *prometheus.HistogramVec // exporter_type
	publish   prometheus.Histogram
	bodyBytes *prometheus.HistogramVec // exporter_type
	inFlight  prometheus.Gauge
	dups      *prometheus.CounterVec // exporter_type
	// streamFull counts publishes refused by the full stream (also in requests as 503).
	streamFull prometheus.Counter

	// byLabel holds the series of each exporter_type label, looked up once here so that
	// a request touches no label map: every known type and "unknown".
	byLabel map[string]*typeMetrics
	// authFailures counts 401s by reason: authMissing and authWrong.
	authFailures map[string]prometheus.Counter
}

// typeMetrics are the series of one exporter_type label. The label "unknown" has no
// noContent and dups: its requests are never stored.
type typeMetrics struct {
	noContent prometheus.Counter  // requests answered 204, the common case
	duration  prometheus.Observer // request duration
	bodyBytes prometheus.Observer
	dups      prometheus.Counter
}

// forLabel returns the series of an exporter_type label, as typeLabel returns it.
func (m *metrics) forLabel(label string) *typeMetrics { return m.byLabel[label] }

// natsState is what the connection and body limit gauges read; Handler provides it from
// its NATS connection.
type natsState interface {
	connected() bool
	reconnects() uint64
	bodyLimit() int64
}

func newMetrics(reg prometheus.Registerer, st natsState) *metrics {
	f := promauto.With(reg)
	m := &metrics{
		requests: f.NewCounterVec(prometheus.CounterOpts{
			Name: "kohaku_receiver_requests_total",
			Help: "Requests to /collector and the stats webhook path by message type and answered status code, or client_closed when the client reset the stream or closed the connection first.",
		}, []string{"exporter_type", "code"}),
		duration: f.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "kohaku_receiver_request_duration_seconds",
			Help:    "Time from the request's arrival to its answer, by message type.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16), // 0.5 ms .. 16 s
		}, []string{"exporter_type"}),
		publish: f.NewHistogram(prometheus.HistogramOpts{
			Name:    "kohaku_receiver_publish_duration_seconds",
			Help:    "Time from publishing to JetStream to its PubAck (or failure).",
			Buckets: prometheus.ExponentialBuckets(0.0002, 2, 16), // 0.2 ms .. 6.5 s
		}),
		bodyBytes: f.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "kohaku_receiver_request_body_bytes",
			Help:    "Size of request bodies read, by message type.",
			Buckets: prometheus.ExponentialBuckets(256, 4, 9), // 256 B .. 16 MiB
		}, []string{"exporter_type"}),
		inFlight: f.NewGauge(prometheus.GaugeOpts{
			Name: "kohaku_receiver_in_flight_requests",
			Help: "Requests to /collector and the stats webhook path being served now.",
		}),
		streamFull: f.NewCounter(prometheus.CounterOpts{
			Name: "kohaku_receiver_stream_full_total",
			Help: "Requests answered 503 because the stream was full (also counted in kohaku_receiver_requests_total with code 503).",
		}),
		dups: f.NewCounterVec(prometheus.CounterOpts{
			Name: "kohaku_receiver_duplicates_total",
			Help: "Messages that JetStream reported as duplicates within its window (answered 204, stored once).",
		}, []string{"exporter_type"}),
	}
	m.byLabel = map[string]*typeMetrics{}
	for _, l := range []string{sora.TypeUserAgent, sora.TypeErlangVM, sora.TypeConnectionRTC} {
		m.byLabel[l] = &typeMetrics{
			noContent: m.requests.WithLabelValues(l, "204"),
			duration:  m.duration.WithLabelValues(l),
			bodyBytes: m.bodyBytes.WithLabelValues(l),
			dups:      m.dups.WithLabelValues(l),
		}
	}
	m.byLabel["unknown"] = &typeMetrics{
		duration:  m.duration.WithLabelValues("unknown"),
		bodyBytes: m.bodyBytes.WithLabelValues("unknown"), // a webhook body naming an unknown type
	}
	authFailures := f.NewCounterVec(prometheus.CounterOpts{
		Name: "kohaku_receiver_auth_failures_total",
		Help: "Requests to the ingest routes answered 401, by reason: missing (no Basic credentials) or wrong.",
	}, []string{"reason"})
	m.authFailures = map[string]prometheus.Counter{
		authMissing: authFailures.WithLabelValues(authMissing),
		authWrong:   authFailures.WithLabelValues(authWrong),
	}
	f.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "kohaku_receiver_nats_connected",
		Help: "1 while the NATS connection is up, 0 otherwise.",
	}, func() float64 {
		if st.connected() {
			return 1
		}
		return 0
	})
	f.NewCounterFunc(prometheus.CounterOpts{
		Name: "kohaku_receiver_nats_reconnects_total",
		Help: "Reconnections of the NATS connection since start.",
	}, func() float64 { return float64(st.reconnects()) })
	f.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "kohaku_receiver_body_limit_bytes",
		Help: "Largest body accepted now: the configured limit capped by the NATS server's max payload.",
	}, func() float64 { return float64(st.bodyLimit()) })
	return m
}

// typeLabel keeps the exporter_type label to a closed set: the known types of both feeds
// and "unknown".
func typeLabel(t string) string {
	if sora.KnownType(t) {
		return t
	}
	return "unknown"
}
