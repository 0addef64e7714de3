// Package schema carries Kohaku's database schema inside the binaries and applies it.
//
// The schema is a list of numbered migrations, the files NNNN_name.sql beside this package,
// embedded with go:embed. [Migrate] applies those not yet recorded in the table
// kohaku_schema_migrations, each in its own transaction together with its record, while it
// holds a PostgreSQL advisory lock, so it is safe to run twice and from several writers at
// once.
//
// When the TimescaleDB extension is available, Migrate also turns every stats table into a
// hypertable on time, enables compression and sets the compression and retention policies
// from [Options], on every run, so that changed intervals take effect. Without TimescaleDB
// the same tables stay plain PostgreSQL tables, and Migrate says so in the log.
//
// Last, Migrate creates the per-minute RTP views that the dashboards read,
// kohaku_inbound_rtp_1m and kohaku_outbound_rtp_1m (bitrate, packets per second, loss,
// jitter, round trip time, frames per second, freezes per stream and minute, tolerant of
// counter resets; views/*.sql documents each column). They read a minute layer,
// kohaku_*_1m_agg, which is a set of continuous aggregates with a refresh policy on
// TimescaleDB and plain views on PostgreSQL, so the same queries work on both
// (aggregates.go explains the design). After writing rows into minutes older than the
// refresh policy covers, as a replay does, call [RefreshAggregates].
package schema
