package store

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// metrics are the store's Prometheus metrics.
type metrics struct {
	messages     *prometheus.CounterVec
	rows         *prometheus.CounterVec
	duplicates   prometheus.Counter
	copySeconds  *prometheus.HistogramVec
	writeSeconds prometheus.Histogram
	writeErrors  *prometheus.CounterVec
	merges       prometheus.Counter
	deadLetters  *prometheus.CounterVec
	conflicts    *prometheus.CounterVec
	databaseUp   prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer) *metrics {
	f := promauto.With(reg)
	return &metrics{
		messages: f.NewCounterVec(prometheus.CounterOpts{
			Name: "kohaku_writer_messages_total",
			Help: "Messages stored in the database, by exporter type (dead letters not included).",
		}, []string{"exporter_type"}),
		rows: f.NewCounterVec(prometheus.CounterOpts{
			Name: "kohaku_writer_rows_total",
			Help: "Rows added to the database, by table; rows already present are counted in kohaku_writer_duplicate_rows_total.",
		}, []string{"table"}),
		duplicates: f.NewCounter(prometheus.CounterOpts{
			Name: "kohaku_writer_duplicate_rows_total",
			Help: "Rows not added because they were already present (redelivery, replay): with the same content, or as an earlier delivery's conflict.",
		}),
		copySeconds: f.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "kohaku_writer_copy_seconds",
			Help:    "Time to COPY (or merge) one batch's rows into one table; for sora_connection, to upsert them.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16),
		}, []string{"table"}),
		writeSeconds: f.NewHistogram(prometheus.HistogramOpts{
			Name:    "kohaku_writer_flush_seconds",
			Help:    "Time of one attempt to write a batch, from the first statement to the commit.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 16),
		}),
		writeErrors: f.NewCounterVec(prometheus.CounterOpts{
			Name: "kohaku_writer_flush_errors_total",
			Help: "Batch writes that failed and will be retried, by kind: transient (database unreachable) or other (needs an operator).",
		}, []string{"kind"}),
		merges: f.NewCounter(prometheus.CounterOpts{
			Name: "kohaku_writer_merges_total",
			Help: "Batch writes redone through temporary tables after a unique violation.",
		}),
		deadLetters: f.NewCounterVec(prometheus.CounterOpts{
			Name: "kohaku_writer_dead_letters_total",
			Help: "Messages, and stats elements of stored messages, written to kohaku_dead_letter because they can never be stored, by reason: decode, database, nul, number, long_id, not_object, conflict.",
		}, []string{"reason"}),
		conflicts: f.NewCounterVec(prometheus.CounterOpts{
			Name: "kohaku_writer_conflicts_total",
			Help: "Rows not added because their natural key already held a row with different content, by table; each is kept in kohaku_dead_letter with reason conflict.",
		}, []string{"table"}),
		databaseUp: f.NewGauge(prometheus.GaugeOpts{
			Name: "kohaku_writer_database_up",
			Help: "1 when the last database operation reached the database, 0 when it could not.",
		}),
	}
}

func (m *metrics) up(ok bool) {
	if ok {
		m.databaseUp.Set(1)
	} else {
		m.databaseUp.Set(0)
	}
}

func (m *metrics) observeWrite(d time.Duration, err error) {
	m.writeSeconds.Observe(d.Seconds())
	switch {
	case err == nil:
	case Transient(err):
		m.writeErrors.WithLabelValues("transient").Inc()
	default:
		m.writeErrors.WithLabelValues("other").Inc()
	}
}

// count records a successful Write of msgs.
func (m *metrics) count(msgs []Message, res Result) {
	dead := 0
	for i, msg := range msgs {
		if dead < len(res.Dead) && res.Dead[dead] == i {
			dead++
			continue
		}
		m.messages.WithLabelValues(msg.ExporterType).Inc()
	}
	for table, n := range res.Inserted {
		m.rows.WithLabelValues(table).Add(float64(n))
	}
	m.duplicates.Add(float64(res.Duplicates))
	for _, d := range res.added {
		m.deadLetters.WithLabelValues(d.reason).Inc()
		if d.reason == ReasonConflict {
			m.conflicts.WithLabelValues(d.table).Inc()
		}
	}
}
