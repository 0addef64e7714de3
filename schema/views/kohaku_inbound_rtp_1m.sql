-- kohaku_inbound_rtp_1m: what each connection received, per stream and minute, for the
-- dashboards. One row per inbound-rtp stats object (connection_id, stats_id) and minute that
-- has samples. The same SQL runs on TimescaleDB and plain PostgreSQL: it reads the minute
-- layer kohaku_*_1m_agg, a continuous aggregate or a plain view (see schema/aggregates.go).
--
-- Counts of a minute are the growth of the cumulative counters from the reference sample,
-- the last sample of the stream's previous minute with samples (its first sample when the
-- minute is the stream's first), to the minute's last sample; rates divide them by the
-- stats timestamps' difference. A counter that went down means the stream started again
-- (a new stream with the same id, a restarted browser): its count is then the new value
-- itself, counted from zero, never a negative number. packetsLost may also go down a little
-- by itself (duplicates, RFC 3550 6.4.1), so it is only reset with the packet and byte
-- counters, and otherwise never counts below zero.
--
-- lag() runs per stats object, so a filter on channel_id, session_id, connection_id or
-- stats_id reaches the stats tables; a filter on bucket alone is applied after it.
CREATE VIEW kohaku_inbound_rtp_1m AS
SELECT
    c.bucket,
    c.channel_id,
    c.session_id,
    c.connection_id,
    c.stats_id,
    c.kind,
    c.ssrc,
    c.samples,
    c.interval_ms / 1000 AS interval_seconds,
    c.counter_reset,
    c.bytes_received,
    CASE WHEN c.interval_ms > 0 THEN 8000 * c.bytes_received / c.interval_ms END AS bitrate,
    c.packets_received,
    CASE WHEN c.interval_ms > 0 THEN 1000 * c.packets_received / c.interval_ms END AS packets_per_second,
    c.packets_lost,
    100 * c.packets_lost::double precision / NULLIF(c.packets_lost + c.packets_received, 0) AS loss_percent,
    c.jitter,
    r.round_trip_time,
    c.frames_per_second,
    c.frame_width,
    c.frame_height,
    c.freeze_count,
    c.freeze_duration
FROM (
    SELECT
        p.bucket, p.channel_id, p.session_id, p.connection_id, p.stats_id, p.kind, p.ssrc, p.samples,
        p.stats_timestamp - p.prev_stats_timestamp AS interval_ms,
        p.reset AS counter_reset,
        CASE WHEN p.reset OR p.bytes_received < p.prev_bytes_received THEN p.bytes_received
            ELSE p.bytes_received - p.prev_bytes_received END AS bytes_received,
        CASE WHEN p.reset OR p.packets_received < p.prev_packets_received THEN p.packets_received
            ELSE p.packets_received - p.prev_packets_received END AS packets_received,
        -- greatest() ignores NULL, so unknown values are caught first.
        CASE WHEN p.packets_lost IS NULL OR NOT p.reset AND p.prev_packets_lost IS NULL THEN NULL
            WHEN p.reset THEN greatest(p.packets_lost, 0)
            ELSE greatest(p.packets_lost - p.prev_packets_lost, 0) END AS packets_lost,
        CASE WHEN p.reset OR p.freeze_count < p.prev_freeze_count THEN p.freeze_count
            ELSE p.freeze_count - p.prev_freeze_count END AS freeze_count,
        CASE WHEN p.reset OR p.total_freezes_duration < p.prev_total_freezes_duration THEN p.total_freezes_duration
            ELSE p.total_freezes_duration - p.prev_total_freezes_duration END AS freeze_duration,
        p.jitter, p.frames_per_second, p.frame_width, p.frame_height
    FROM (
        SELECT w.*,
            coalesce(w.packets_received < w.prev_packets_received OR w.bytes_received < w.prev_bytes_received, false) AS reset
        FROM (
            SELECT a.*,
                CASE WHEN lag(a.bucket) OVER s IS NULL THEN a.first_stats_timestamp ELSE lag(a.stats_timestamp) OVER s END AS prev_stats_timestamp,
                CASE WHEN lag(a.bucket) OVER s IS NULL THEN a.first_bytes_received ELSE lag(a.bytes_received) OVER s END AS prev_bytes_received,
                CASE WHEN lag(a.bucket) OVER s IS NULL THEN a.first_packets_received ELSE lag(a.packets_received) OVER s END AS prev_packets_received,
                CASE WHEN lag(a.bucket) OVER s IS NULL THEN a.first_packets_lost ELSE lag(a.packets_lost) OVER s END AS prev_packets_lost,
                CASE WHEN lag(a.bucket) OVER s IS NULL THEN a.first_freeze_count ELSE lag(a.freeze_count) OVER s END AS prev_freeze_count,
                CASE WHEN lag(a.bucket) OVER s IS NULL THEN a.first_total_freezes_duration ELSE lag(a.total_freezes_duration) OVER s END AS prev_total_freezes_duration
            FROM kohaku_inbound_rtp_1m_agg a
            WINDOW s AS (PARTITION BY a.channel_id, a.session_id, a.connection_id, a.stats_id ORDER BY a.bucket)
        ) w
    ) p
) c
-- The round trip time of a received stream is measured by the sender's reports
-- (remote-outbound-rtp, whose localId names the inbound-rtp object): the mean of the
-- measurements made in the minute, or the mean reported roundTripTime when there were none
-- or the browser does not count them. Round trip counters that went down started again.
LEFT JOIN (
    SELECT p.bucket, p.channel_id, p.session_id, p.connection_id, p.local_id,
        coalesce(
            CASE WHEN p.reset THEN p.total_round_trip_time / NULLIF(p.round_trip_time_measurements, 0)
                ELSE (p.total_round_trip_time - p.prev_total_round_trip_time)
                    / NULLIF(p.round_trip_time_measurements - p.prev_round_trip_time_measurements, 0) END,
            p.round_trip_time) AS round_trip_time
    FROM (
        SELECT w.*,
            coalesce(w.round_trip_time_measurements < w.prev_round_trip_time_measurements
                OR w.total_round_trip_time < w.prev_total_round_trip_time, false) AS reset
        FROM (
            SELECT a.*,
                CASE WHEN lag(a.bucket) OVER s IS NULL THEN a.first_total_round_trip_time ELSE lag(a.total_round_trip_time) OVER s END AS prev_total_round_trip_time,
                CASE WHEN lag(a.bucket) OVER s IS NULL THEN a.first_round_trip_time_measurements ELSE lag(a.round_trip_time_measurements) OVER s END AS prev_round_trip_time_measurements
            FROM kohaku_remote_outbound_rtp_1m_agg a
            WINDOW s AS (PARTITION BY a.channel_id, a.session_id, a.connection_id, a.stats_id ORDER BY a.bucket)
        ) w
    ) p
) r ON r.channel_id = c.channel_id AND r.session_id = c.session_id AND r.connection_id = c.connection_id
    AND r.bucket = c.bucket AND r.local_id = c.stats_id;

COMMENT ON VIEW kohaku_inbound_rtp_1m IS 'Per connection, received stream (inbound-rtp) and minute: bitrate, packets per second, packets lost and loss %, jitter, round trip time, frames per second, freezes. Counts cover interval_seconds up to the minute''s last sample and tolerate counter resets.';
COMMENT ON COLUMN kohaku_inbound_rtp_1m.bucket IS 'Start of the minute (UTC; date_bin and time_bucket alike).';
COMMENT ON COLUMN kohaku_inbound_rtp_1m.channel_id IS 'Sora channel id.';
COMMENT ON COLUMN kohaku_inbound_rtp_1m.session_id IS 'Sora session id.';
COMMENT ON COLUMN kohaku_inbound_rtp_1m.connection_id IS 'Sora connection id of the receiving connection.';
COMMENT ON COLUMN kohaku_inbound_rtp_1m.stats_id IS 'id of the inbound-rtp stats object: one received stream.';
COMMENT ON COLUMN kohaku_inbound_rtp_1m.kind IS 'audio or video.';
COMMENT ON COLUMN kohaku_inbound_rtp_1m.ssrc IS 'RTP SSRC of the stream.';
COMMENT ON COLUMN kohaku_inbound_rtp_1m.samples IS 'Number of stats samples in the minute.';
COMMENT ON COLUMN kohaku_inbound_rtp_1m.interval_seconds IS 'Seconds that the counts cover: from the reference sample (the previous minute''s last sample, or this minute''s first) to this minute''s last sample, by stats timestamp. NULL or 0 when there is nothing to compare with.';
COMMENT ON COLUMN kohaku_inbound_rtp_1m.counter_reset IS 'True when the packet or byte counter went down since the reference sample: the stream started again and the counts start from zero.';
COMMENT ON COLUMN kohaku_inbound_rtp_1m.bytes_received IS 'Payload bytes received in the interval (bytesReceived growth).';
COMMENT ON COLUMN kohaku_inbound_rtp_1m.bitrate IS 'Received payload bitrate, bits per second: bytes_received * 8 / interval_seconds.';
COMMENT ON COLUMN kohaku_inbound_rtp_1m.packets_received IS 'RTP packets received in the interval (packetsReceived growth).';
COMMENT ON COLUMN kohaku_inbound_rtp_1m.packets_per_second IS 'Packets received per second: packets_received / interval_seconds.';
COMMENT ON COLUMN kohaku_inbound_rtp_1m.packets_lost IS 'Packets lost in the interval (packetsLost growth, never below zero).';
COMMENT ON COLUMN kohaku_inbound_rtp_1m.loss_percent IS 'Loss in percent: 100 * packets_lost / (packets_lost + packets_received); NULL when nothing was expected.';
COMMENT ON COLUMN kohaku_inbound_rtp_1m.jitter IS 'Mean jitter of the minute''s samples, seconds.';
COMMENT ON COLUMN kohaku_inbound_rtp_1m.round_trip_time IS 'Round trip time, seconds, from the sender''s reports (remote-outbound-rtp): mean of the minute''s measurements, else the mean reported roundTripTime; NULL without reports.';
COMMENT ON COLUMN kohaku_inbound_rtp_1m.frames_per_second IS 'Mean framesPerSecond of the minute''s samples (video).';
COMMENT ON COLUMN kohaku_inbound_rtp_1m.frame_width IS 'frameWidth at the minute''s last sample (video).';
COMMENT ON COLUMN kohaku_inbound_rtp_1m.frame_height IS 'frameHeight at the minute''s last sample (video).';
COMMENT ON COLUMN kohaku_inbound_rtp_1m.freeze_count IS 'Video freezes in the interval (freezeCount growth).';
COMMENT ON COLUMN kohaku_inbound_rtp_1m.freeze_duration IS 'Seconds of video freezes in the interval (totalFreezesDuration growth).';
