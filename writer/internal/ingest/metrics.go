package ingest

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// metrics are the consumer's Prometheus metrics; the store counts what it writes.
type metrics struct {
	batchMessages prometheus.Histogram
	batchBytes    prometheus.Histogram
	batchRows     prometheus.Histogram
	redeliveries  prometheus.Counter
	pending       prometheus.Gauge
	ackPending    prometheus.Gauge
	stalled       prometheus.Gauge
	ackErrors     prometheus.Counter
	lost          prometheus.Counter
	trimmed       prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) *metrics {
	f := promauto.With(reg)
	return &metrics{
		batchMessages: f.NewHistogram(prometheus.HistogramOpts{
			Name:    "kohaku_writer_batch_messages",
			Help:    "Messages per batch written.",
			Buckets: []float64{1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000},
		}),
		batchBytes: f.NewHistogram(prometheus.HistogramOpts{
			Name:    "kohaku_writer_batch_bytes",
			Help:    "Message bytes per batch written; KOHAKU_BATCH_MAX_BYTES bounds it but for a larger message alone.",
			Buckets: prometheus.ExponentialBuckets(16<<10, 4, 8), // 16 KiB to 256 MiB
		}),
		batchRows: f.NewHistogram(prometheus.HistogramOpts{
			Name:    "kohaku_writer_batch_rows",
			Help:    "Stats rows per batch written; KOHAKU_BATCH_MAX_ROWS bounds it but for a message with more alone.",
			Buckets: []float64{10, 100, 1000, 5000, 10000, 20000, 50000, 100000, 200000, 500000, 1e6},
		}),
		redeliveries: f.NewCounter(prometheus.CounterOpts{
			Name: "kohaku_writer_redeliveries_total",
			Help: "Messages that JetStream delivered more than once (ack timeout, crashed writer).",
		}),
		pending: f.NewGauge(prometheus.GaugeOpts{
			Name: "kohaku_writer_consumer_pending_messages",
			Help: "Messages in the stream not yet delivered to the kohaku-writer consumer: the writers' lag.",
		}),
		ackPending: f.NewGauge(prometheus.GaugeOpts{
			Name: "kohaku_writer_consumer_ack_pending_messages",
			Help: "Messages delivered to the kohaku-writer consumer and not yet acknowledged.",
		}),
		stalled: f.NewGauge(prometheus.GaugeOpts{
			Name: "kohaku_writer_stalled",
			Help: "1 while this writer holds a batch it cannot write and is retrying.",
		}),
		lost: f.NewCounter(prometheus.CounterOpts{
			Name: "kohaku_writer_lost_messages_total",
			Help: "Messages this writer found gone from the stream before they were written (past KOHAKU_STREAM_MAX_AGE, or deleted), each range logged at WARN with its sequences; with several writers each may count the same range.",
		}),
		trimmed: f.NewCounter(prometheus.CounterOpts{
			Name: "kohaku_writer_trimmed_messages_total",
			Help: "Written (acknowledged) messages this writer deleted from the stream to keep it within KOHAKU_STREAM_TRIM_PERCENT of its MaxBytes.",
		}),
		ackErrors: f.NewCounter(prometheus.CounterOpts{
			Name: "kohaku_writer_ack_errors_total",
			Help: "Acknowledgements that could not be sent; their messages come again and are found as duplicates.",
		}),
	}
}
