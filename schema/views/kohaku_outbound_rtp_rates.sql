-- kohaku_outbound_rtp_rates: what each connection sent, per stream and report, for the
-- dashboards over short ranges and for the quality analysis. One row per outbound-rtp row:
-- per stats object (connection_id, stats_id; one per simulcast layer) and report. The same
-- SQL runs on TimescaleDB and plain PostgreSQL: it reads the stats table itself.
--
-- Counts and rates follow kohaku_inbound_rtp_rates: the growth of each cumulative counter
-- since the stats object's previous report, divided by the stats timestamps' difference, a
-- counter that went down (or every counter, when packetsSent or bytesSent went down: the
-- stream started again) counting from zero, and NULL at the first report. The quality
-- limitation shares come from the cumulative qualityLimitationDurations record (seconds
-- per reason) the same way. What the receiving end reports (loss, jitter, round trip time)
-- is in kohaku_remote_inbound_rtp_rates.
--
-- lag() runs per stats object, so a filter on channel_id, session_id, connection_id or
-- stats_id reaches the stats table; a filter on time alone is applied after lag().
CREATE VIEW kohaku_outbound_rtp_rates AS
SELECT
    d.time,
    d.channel_id,
    d.session_id,
    d.connection_id,
    d.stats_id,
    d.kind,
    d.ssrc,
    d.rid,
    d.interval_ms / 1000 AS interval_seconds,
    d.reset AS counter_reset,
    d.bytes_sent,
    d.packets_sent,
    CASE WHEN d.interval_ms > 0 THEN 8000 * d.bytes_sent / d.interval_ms END AS bitrate,
    CASE WHEN d.interval_ms > 0 THEN 1000 * d.packets_sent / d.interval_ms END AS packets_per_second,
    coalesce(d.reported_frames_per_second,
        CASE WHEN d.interval_ms > 0 THEN 1000 * d.frames_encoded / d.interval_ms END) AS frames_per_second,
    d.frame_width,
    d.frame_height,
    d.frames_encoded,
    d.total_encode_time / NULLIF(d.frames_encoded, 0) AS encode_time_per_frame,
    CASE WHEN d.interval_ms > 0 THEN 1000 * d.nack_count / d.interval_ms END AS nack_per_second,
    CASE WHEN d.interval_ms > 0 THEN 1000 * d.pli_count / d.interval_ms END AS pli_per_second,
    CASE WHEN d.interval_ms > 0 THEN 1000 * d.fir_count / d.interval_ms END AS fir_per_second,
    d.quality_limitation_reason,
    -- Not least(): it ignores a NULL and would make an unknown share 1.
    CASE WHEN d.interval_ms <= 0 THEN NULL WHEN 1000 * d.limited_cpu > d.interval_ms THEN 1
        ELSE 1000 * d.limited_cpu / d.interval_ms END AS quality_limitation_cpu_share,
    CASE WHEN d.interval_ms <= 0 THEN NULL WHEN 1000 * d.limited_bandwidth > d.interval_ms THEN 1
        ELSE 1000 * d.limited_bandwidth / d.interval_ms END AS quality_limitation_bandwidth_share,
    CASE WHEN d.interval_ms <= 0 THEN NULL WHEN 1000 * d.limited_other > d.interval_ms THEN 1
        ELSE 1000 * d.limited_other / d.interval_ms END AS quality_limitation_other_share,
    d.retransmitted_bytes_sent,
    CASE WHEN d.interval_ms > 0 THEN 8000 * d.retransmitted_bytes_sent / d.interval_ms END AS retransmitted_bitrate,
    d.target_bitrate
FROM (
    SELECT
        r.time, r.channel_id, r.session_id, r.connection_id, r.stats_id, r.kind, r.ssrc, r.rid,
        r.stats_timestamp - r.prev_stats_timestamp AS interval_ms,
        r.reset,
        CASE WHEN r.reset OR r.bytes_sent < r.prev_bytes_sent THEN r.bytes_sent
            ELSE r.bytes_sent - r.prev_bytes_sent END AS bytes_sent,
        CASE WHEN r.reset OR r.packets_sent < r.prev_packets_sent THEN r.packets_sent
            ELSE r.packets_sent - r.prev_packets_sent END AS packets_sent,
        CASE WHEN r.reset OR r.frames_encoded < r.prev_frames_encoded THEN r.frames_encoded
            ELSE r.frames_encoded - r.prev_frames_encoded END AS frames_encoded,
        CASE WHEN r.reset OR r.total_encode_time < r.prev_total_encode_time THEN r.total_encode_time
            ELSE r.total_encode_time - r.prev_total_encode_time END AS total_encode_time,
        CASE WHEN r.reset OR r.nack_count < r.prev_nack_count THEN r.nack_count
            ELSE r.nack_count - r.prev_nack_count END AS nack_count,
        CASE WHEN r.reset OR r.pli_count < r.prev_pli_count THEN r.pli_count
            ELSE r.pli_count - r.prev_pli_count END AS pli_count,
        CASE WHEN r.reset OR r.fir_count < r.prev_fir_count THEN r.fir_count
            ELSE r.fir_count - r.prev_fir_count END AS fir_count,
        CASE WHEN r.reset OR r.retransmitted_bytes_sent < r.prev_retransmitted_bytes_sent THEN r.retransmitted_bytes_sent
            ELSE r.retransmitted_bytes_sent - r.prev_retransmitted_bytes_sent END AS retransmitted_bytes_sent,
        CASE WHEN r.reset OR r.cpu < r.prev_cpu THEN r.cpu ELSE r.cpu - r.prev_cpu END AS limited_cpu,
        CASE WHEN r.reset OR r.bandwidth < r.prev_bandwidth THEN r.bandwidth ELSE r.bandwidth - r.prev_bandwidth END AS limited_bandwidth,
        CASE WHEN r.reset OR r.other < r.prev_other THEN r.other ELSE r.other - r.prev_other END AS limited_other,
        r.frames_per_second AS reported_frames_per_second, r.frame_width, r.frame_height,
        r.quality_limitation_reason, r.target_bitrate
    FROM (
        SELECT w.*,
            coalesce(w.packets_sent < w.prev_packets_sent OR w.bytes_sent < w.prev_bytes_sent, false) AS reset,
            lag(w.cpu) OVER w AS prev_cpu,
            lag(w.bandwidth) OVER w AS prev_bandwidth,
            lag(w.other) OVER w AS prev_other
        FROM (
            SELECT s.time, s.channel_id, s.session_id, s.connection_id, s.stats_id, s.kind, s.ssrc, s.rid,
                s.stats_timestamp, s.bytes_sent, s.packets_sent, s.frames_encoded, s.total_encode_time,
                s.nack_count, s.pli_count, s.fir_count, s.retransmitted_bytes_sent,
                s.frames_per_second, s.frame_width, s.frame_height, s.quality_limitation_reason, s.target_bitrate,
                -- A member that is not a number (a browser's bug) counts as missing rather
                -- than failing every query of the view.
                CASE WHEN jsonb_typeof(s.quality_limitation_durations -> 'cpu') = 'number'
                    THEN (s.quality_limitation_durations ->> 'cpu')::double precision END AS cpu,
                CASE WHEN jsonb_typeof(s.quality_limitation_durations -> 'bandwidth') = 'number'
                    THEN (s.quality_limitation_durations ->> 'bandwidth')::double precision END AS bandwidth,
                CASE WHEN jsonb_typeof(s.quality_limitation_durations -> 'other') = 'number'
                    THEN (s.quality_limitation_durations ->> 'other')::double precision END AS other,
                lag(s.stats_timestamp) OVER w AS prev_stats_timestamp,
                lag(s.bytes_sent) OVER w AS prev_bytes_sent,
                lag(s.packets_sent) OVER w AS prev_packets_sent,
                lag(s.frames_encoded) OVER w AS prev_frames_encoded,
                lag(s.total_encode_time) OVER w AS prev_total_encode_time,
                lag(s.nack_count) OVER w AS prev_nack_count,
                lag(s.pli_count) OVER w AS prev_pli_count,
                lag(s.fir_count) OVER w AS prev_fir_count,
                lag(s.retransmitted_bytes_sent) OVER w AS prev_retransmitted_bytes_sent
            FROM rtc_outbound_rtp_stats s
            WINDOW w AS (PARTITION BY s.channel_id, s.session_id, s.connection_id, s.stats_id ORDER BY s.time)
        ) w
        -- The same partition and order as the inner window, so both run on one sort.
        WINDOW w AS (PARTITION BY w.channel_id, w.session_id, w.connection_id, w.stats_id ORDER BY w.time)
    ) r
) d;

COMMENT ON VIEW kohaku_outbound_rtp_rates IS 'Per connection, sent stream (outbound-rtp, one per simulcast layer) and report: counts since the stream''s previous report and rates over the stats timestamps'' interval (bitrate, packets, frames, encode time per frame, NACK/PLI/FIR per second, quality limitation shares, retransmissions). Tolerates counter resets and missing reports; the first report of a stream has no counts.';
COMMENT ON COLUMN kohaku_outbound_rtp_rates.time IS 'Time of the report (the message timestamp).';
COMMENT ON COLUMN kohaku_outbound_rtp_rates.channel_id IS 'Sora channel id.';
COMMENT ON COLUMN kohaku_outbound_rtp_rates.session_id IS 'Sora session id.';
COMMENT ON COLUMN kohaku_outbound_rtp_rates.connection_id IS 'Sora connection id of the sending connection.';
COMMENT ON COLUMN kohaku_outbound_rtp_rates.stats_id IS 'id of the outbound-rtp stats object: one sent stream, or one simulcast layer.';
COMMENT ON COLUMN kohaku_outbound_rtp_rates.kind IS 'audio or video.';
COMMENT ON COLUMN kohaku_outbound_rtp_rates.ssrc IS 'RTP SSRC of the stream.';
COMMENT ON COLUMN kohaku_outbound_rtp_rates.rid IS 'Simulcast RTP stream id (rid), NULL without simulcast.';
COMMENT ON COLUMN kohaku_outbound_rtp_rates.interval_seconds IS 'Seconds since the stream''s previous report, by stats timestamp: what every count covers and every rate divides by. Longer than the reporting interval when reports are missing; NULL at the stream''s first report.';
COMMENT ON COLUMN kohaku_outbound_rtp_rates.counter_reset IS 'True when packetsSent or bytesSent went down since the previous report: the stream started again and the counts start from zero.';
COMMENT ON COLUMN kohaku_outbound_rtp_rates.bytes_sent IS 'Payload bytes sent in the interval (bytesSent growth, retransmissions included).';
COMMENT ON COLUMN kohaku_outbound_rtp_rates.packets_sent IS 'RTP packets sent in the interval (packetsSent growth).';
COMMENT ON COLUMN kohaku_outbound_rtp_rates.bitrate IS 'Sent payload bitrate, bits per second: bytes_sent * 8 / interval_seconds.';
COMMENT ON COLUMN kohaku_outbound_rtp_rates.packets_per_second IS 'Packets sent per second: packets_sent / interval_seconds.';
COMMENT ON COLUMN kohaku_outbound_rtp_rates.frames_per_second IS 'Frames per second (video): framesPerSecond at the report, or frames_encoded / interval_seconds when the browser does not report it.';
COMMENT ON COLUMN kohaku_outbound_rtp_rates.frame_width IS 'frameWidth at the report (video), pixels.';
COMMENT ON COLUMN kohaku_outbound_rtp_rates.frame_height IS 'frameHeight at the report (video), pixels.';
COMMENT ON COLUMN kohaku_outbound_rtp_rates.frames_encoded IS 'Frames encoded in the interval (framesEncoded growth).';
COMMENT ON COLUMN kohaku_outbound_rtp_rates.encode_time_per_frame IS 'Mean encode time per frame in the interval, seconds: totalEncodeTime growth / framesEncoded growth; NULL when no frame was encoded.';
COMMENT ON COLUMN kohaku_outbound_rtp_rates.nack_per_second IS 'NACKs received per second: nackCount growth / interval_seconds.';
COMMENT ON COLUMN kohaku_outbound_rtp_rates.pli_per_second IS 'Picture loss indications received per second: pliCount growth / interval_seconds.';
COMMENT ON COLUMN kohaku_outbound_rtp_rates.fir_per_second IS 'Full intra requests received per second: firCount growth / interval_seconds.';
COMMENT ON COLUMN kohaku_outbound_rtp_rates.quality_limitation_reason IS 'qualityLimitationReason at the report (none, cpu, bandwidth, other).';
COMMENT ON COLUMN kohaku_outbound_rtp_rates.quality_limitation_cpu_share IS 'Share of the interval, 0 to 1, that the encoder was limited by CPU: growth of qualityLimitationDurations.cpu / interval_seconds, at most 1.';
COMMENT ON COLUMN kohaku_outbound_rtp_rates.quality_limitation_bandwidth_share IS 'Share of the interval, 0 to 1, that the encoder was limited by bandwidth: growth of qualityLimitationDurations.bandwidth / interval_seconds, at most 1.';
COMMENT ON COLUMN kohaku_outbound_rtp_rates.quality_limitation_other_share IS 'Share of the interval, 0 to 1, that the encoder was limited for another reason: growth of qualityLimitationDurations.other / interval_seconds, at most 1.';
COMMENT ON COLUMN kohaku_outbound_rtp_rates.retransmitted_bytes_sent IS 'Payload bytes retransmitted in the interval (retransmittedBytesSent growth).';
COMMENT ON COLUMN kohaku_outbound_rtp_rates.retransmitted_bitrate IS 'Retransmitted payload bitrate, bits per second: retransmitted_bytes_sent * 8 / interval_seconds.';
COMMENT ON COLUMN kohaku_outbound_rtp_rates.target_bitrate IS 'targetBitrate of the encoder at the report, bits per second.';
