-- kohaku_outbound_rtp_1m: what each connection sent, per stream and minute, for the
-- dashboards. One row per outbound-rtp stats object (connection_id, stats_id; one per
-- simulcast layer) and minute that has samples. The same SQL runs on TimescaleDB and plain
-- PostgreSQL: it reads the minute layer kohaku_*_1m_agg, a continuous aggregate or a plain
-- view (see schema/aggregates.go).
--
-- Counts and rates follow kohaku_inbound_rtp_1m: the growth of the cumulative counters from
-- the reference sample (the previous minute's last sample, or this minute's first) to the
-- minute's last sample, a counter that went down counting again from zero. Loss, jitter and
-- round trip time are what the receiving end reports (remote-inbound-rtp, whose localId
-- names the outbound-rtp object); freezes are only known to the receiving end, so they are
-- in kohaku_inbound_rtp_1m of the receiving connection.
--
-- lag() runs per stats object, so a filter on channel_id, session_id, connection_id or
-- stats_id reaches the stats tables; a filter on bucket alone is applied after it.
CREATE VIEW kohaku_outbound_rtp_1m AS
SELECT
    c.bucket,
    c.channel_id,
    c.session_id,
    c.connection_id,
    c.stats_id,
    c.kind,
    c.ssrc,
    c.rid,
    c.samples,
    c.interval_ms / 1000 AS interval_seconds,
    c.counter_reset,
    c.bytes_sent,
    CASE WHEN c.interval_ms > 0 THEN 8000 * c.bytes_sent / c.interval_ms END AS bitrate,
    c.packets_sent,
    CASE WHEN c.interval_ms > 0 THEN 1000 * c.packets_sent / c.interval_ms END AS packets_per_second,
    r.packets_lost,
    -- The remote's reports lag the local counters by up to a report interval, so the ratio
    -- is capped at 100; not with least(), which ignores a NULL and would make it 100.
    CASE WHEN r.packets_lost > c.packets_sent THEN 100
        ELSE 100 * r.packets_lost::double precision / NULLIF(c.packets_sent, 0) END AS loss_percent,
    r.jitter,
    r.round_trip_time,
    c.frames_per_second,
    c.frame_width,
    c.frame_height,
    c.target_bitrate,
    c.quality_limitation_reason
FROM (
    SELECT
        p.bucket, p.channel_id, p.session_id, p.connection_id, p.stats_id, p.kind, p.ssrc, p.rid, p.samples,
        p.stats_timestamp - p.prev_stats_timestamp AS interval_ms,
        p.reset AS counter_reset,
        CASE WHEN p.reset OR p.bytes_sent < p.prev_bytes_sent THEN p.bytes_sent
            ELSE p.bytes_sent - p.prev_bytes_sent END AS bytes_sent,
        CASE WHEN p.reset OR p.packets_sent < p.prev_packets_sent THEN p.packets_sent
            ELSE p.packets_sent - p.prev_packets_sent END AS packets_sent,
        p.frames_per_second, p.frame_width, p.frame_height, p.target_bitrate, p.quality_limitation_reason
    FROM (
        SELECT w.*,
            coalesce(w.packets_sent < w.prev_packets_sent OR w.bytes_sent < w.prev_bytes_sent, false) AS reset
        FROM (
            SELECT a.*,
                CASE WHEN lag(a.bucket) OVER s IS NULL THEN a.first_stats_timestamp ELSE lag(a.stats_timestamp) OVER s END AS prev_stats_timestamp,
                CASE WHEN lag(a.bucket) OVER s IS NULL THEN a.first_bytes_sent ELSE lag(a.bytes_sent) OVER s END AS prev_bytes_sent,
                CASE WHEN lag(a.bucket) OVER s IS NULL THEN a.first_packets_sent ELSE lag(a.packets_sent) OVER s END AS prev_packets_sent
            FROM kohaku_outbound_rtp_1m_agg a
            WINDOW s AS (PARTITION BY a.channel_id, a.session_id, a.connection_id, a.stats_id ORDER BY a.bucket)
        ) w
    ) p
) c
-- What the receiving end reported in the minute. Its cumulative packetsLost may go down a
-- little by itself (duplicates), so a decrease counts as no loss unless the round trip
-- counters (roundTripTimeMeasurements, totalRoundTripTime) went down too, which means the
-- stream started again.
LEFT JOIN (
    SELECT p.bucket, p.channel_id, p.session_id, p.connection_id, p.local_id,
        CASE WHEN p.packets_lost IS NULL OR NOT p.reset AND p.prev_packets_lost IS NULL THEN NULL
            WHEN p.reset THEN greatest(p.packets_lost, 0)
            ELSE greatest(p.packets_lost - p.prev_packets_lost, 0) END AS packets_lost,
        p.jitter,
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
                CASE WHEN lag(a.bucket) OVER s IS NULL THEN a.first_packets_lost ELSE lag(a.packets_lost) OVER s END AS prev_packets_lost,
                CASE WHEN lag(a.bucket) OVER s IS NULL THEN a.first_total_round_trip_time ELSE lag(a.total_round_trip_time) OVER s END AS prev_total_round_trip_time,
                CASE WHEN lag(a.bucket) OVER s IS NULL THEN a.first_round_trip_time_measurements ELSE lag(a.round_trip_time_measurements) OVER s END AS prev_round_trip_time_measurements
            FROM kohaku_remote_inbound_rtp_1m_agg a
            WINDOW s AS (PARTITION BY a.channel_id, a.session_id, a.connection_id, a.stats_id ORDER BY a.bucket)
        ) w
    ) p
) r ON r.channel_id = c.channel_id AND r.session_id = c.session_id AND r.connection_id = c.connection_id
    AND r.bucket = c.bucket AND r.local_id = c.stats_id;

COMMENT ON VIEW kohaku_outbound_rtp_1m IS 'Per connection, sent stream (outbound-rtp) and minute: bitrate, packets per second, packets lost and loss %, jitter and round trip time as the receiving end reports them, frames per second. Counts cover interval_seconds up to the minute''s last sample and tolerate counter resets.';
COMMENT ON COLUMN kohaku_outbound_rtp_1m.bucket IS 'Start of the minute (UTC; date_bin and time_bucket alike).';
COMMENT ON COLUMN kohaku_outbound_rtp_1m.channel_id IS 'Sora channel id.';
COMMENT ON COLUMN kohaku_outbound_rtp_1m.session_id IS 'Sora session id.';
COMMENT ON COLUMN kohaku_outbound_rtp_1m.connection_id IS 'Sora connection id of the sending connection.';
COMMENT ON COLUMN kohaku_outbound_rtp_1m.stats_id IS 'id of the outbound-rtp stats object: one sent stream, or one simulcast layer.';
COMMENT ON COLUMN kohaku_outbound_rtp_1m.kind IS 'audio or video.';
COMMENT ON COLUMN kohaku_outbound_rtp_1m.ssrc IS 'RTP SSRC of the stream.';
COMMENT ON COLUMN kohaku_outbound_rtp_1m.rid IS 'Simulcast RTP stream id (rid), NULL without simulcast.';
COMMENT ON COLUMN kohaku_outbound_rtp_1m.samples IS 'Number of stats samples in the minute.';
COMMENT ON COLUMN kohaku_outbound_rtp_1m.interval_seconds IS 'Seconds that the counts cover: from the reference sample (the previous minute''s last sample, or this minute''s first) to this minute''s last sample, by stats timestamp. NULL or 0 when there is nothing to compare with.';
COMMENT ON COLUMN kohaku_outbound_rtp_1m.counter_reset IS 'True when the packet or byte counter went down since the reference sample: the stream started again and the counts start from zero.';
COMMENT ON COLUMN kohaku_outbound_rtp_1m.bytes_sent IS 'Payload bytes sent in the interval (bytesSent growth, retransmissions included).';
COMMENT ON COLUMN kohaku_outbound_rtp_1m.bitrate IS 'Sent payload bitrate, bits per second: bytes_sent * 8 / interval_seconds.';
COMMENT ON COLUMN kohaku_outbound_rtp_1m.packets_sent IS 'RTP packets sent in the interval (packetsSent growth).';
COMMENT ON COLUMN kohaku_outbound_rtp_1m.packets_per_second IS 'Packets sent per second: packets_sent / interval_seconds.';
COMMENT ON COLUMN kohaku_outbound_rtp_1m.packets_lost IS 'Packets that the receiving end reported lost in the minute (remote-inbound-rtp packetsLost growth, never below zero).';
COMMENT ON COLUMN kohaku_outbound_rtp_1m.loss_percent IS 'Loss in percent: 100 * packets_lost / packets_sent, at most 100; NULL when nothing was sent or reported.';
COMMENT ON COLUMN kohaku_outbound_rtp_1m.jitter IS 'Mean jitter that the receiving end reported, seconds.';
COMMENT ON COLUMN kohaku_outbound_rtp_1m.round_trip_time IS 'Round trip time, seconds, from the receiving end''s reports (remote-inbound-rtp): mean of the minute''s measurements, else the mean reported roundTripTime; NULL without reports.';
COMMENT ON COLUMN kohaku_outbound_rtp_1m.frames_per_second IS 'Mean framesPerSecond of the minute''s samples (video).';
COMMENT ON COLUMN kohaku_outbound_rtp_1m.frame_width IS 'frameWidth at the minute''s last sample (video).';
COMMENT ON COLUMN kohaku_outbound_rtp_1m.frame_height IS 'frameHeight at the minute''s last sample (video).';
COMMENT ON COLUMN kohaku_outbound_rtp_1m.target_bitrate IS 'Mean targetBitrate of the encoder, bits per second.';
COMMENT ON COLUMN kohaku_outbound_rtp_1m.quality_limitation_reason IS 'qualityLimitationReason at the minute''s last sample (none, cpu, bandwidth, other).';
