-- kohaku_inbound_rtp_rates: what each connection received, per stream and report, for the
-- dashboards over short ranges (up to a few hours, where minutes smear a 5-second freeze or
-- loss burst) and for the quality analysis. One row per inbound-rtp row: per stats object
-- (connection_id, stats_id) and report. The same SQL runs on TimescaleDB and plain
-- PostgreSQL: it reads the stats table itself, so it needs no refresh.
--
-- Every count is the growth of a cumulative counter since the stats object's previous
-- report (lag() over its reports in time order), and every rate divides a count by the
-- stats timestamps' difference: a missing report only makes the interval longer. The first
-- report of a stats object has nothing to compare with: its counts and rates are NULL, its
-- gauges (jitter, frame size, audio level) are there. A packet or byte counter that went
-- down means the stream started again (a new stream under the same id, a restarted
-- browser): every count of that report is then the new value itself, counted from zero,
-- and any other counter that went down by itself counts from zero too, so no count is
-- ever negative. packetsLost may also go down a little by itself (duplicates, RFC 3550
-- 6.4.1), so it counts from zero only with a reset and otherwise never below zero.
--
-- lag() runs per stats object, so a filter on channel_id, session_id, connection_id or
-- stats_id reaches the stats table through its natural key (connection_id, stats_id,
-- time); a filter on time alone is applied after lag(), so filter on a connection too.
CREATE VIEW kohaku_inbound_rtp_rates AS
SELECT
    d.time,
    d.channel_id,
    d.session_id,
    d.connection_id,
    d.stats_id,
    d.kind,
    d.ssrc,
    d.interval_ms / 1000 AS interval_seconds,
    d.reset AS counter_reset,
    d.bytes_received,
    d.packets_received,
    d.packets_lost,
    CASE WHEN d.interval_ms > 0 THEN 8000 * d.bytes_received / d.interval_ms END AS bitrate,
    CASE WHEN d.interval_ms > 0 THEN 1000 * d.packets_received / d.interval_ms END AS packets_per_second,
    100 * d.packets_lost::double precision / NULLIF(d.packets_lost + d.packets_received, 0) AS loss_percent,
    d.jitter,
    coalesce(d.reported_frames_per_second,
        CASE WHEN d.interval_ms > 0 THEN 1000 * d.frames_decoded / d.interval_ms END) AS frames_per_second,
    d.frame_width,
    d.frame_height,
    d.frames_decoded,
    d.frames_dropped,
    d.freeze_count,
    d.freeze_duration,
    d.pause_count,
    d.total_pauses_duration,
    -- Not least(): it ignores a NULL and would make an unknown figure 100.
    CASE WHEN d.concealed_samples > d.total_samples_received THEN 100
        ELSE 100 * d.concealed_samples::double precision / NULLIF(d.total_samples_received, 0) END AS concealment_percent,
    d.jitter_buffer_delay / NULLIF(d.jitter_buffer_emitted_count, 0) AS jitter_buffer_delay,
    d.audio_level,
    CASE WHEN d.interval_ms > 0 THEN 1000 * d.nack_count / d.interval_ms END AS nack_per_second,
    CASE WHEN d.interval_ms > 0 THEN 1000 * d.pli_count / d.interval_ms END AS pli_per_second,
    CASE WHEN d.interval_ms > 0 THEN 1000 * d.fir_count / d.interval_ms END AS fir_per_second,
    d.total_decode_time / NULLIF(d.frames_decoded, 0) AS decode_time_per_frame
FROM (
    SELECT
        r.time, r.channel_id, r.session_id, r.connection_id, r.stats_id, r.kind, r.ssrc,
        r.stats_timestamp - r.prev_stats_timestamp AS interval_ms,
        r.reset,
        -- Each count: the new value after a reset or a decrease, else the growth. A NULL on
        -- either side (the first report, a member the browser left out) gives NULL.
        CASE WHEN r.reset OR r.bytes_received < r.prev_bytes_received THEN r.bytes_received
            ELSE r.bytes_received - r.prev_bytes_received END AS bytes_received,
        CASE WHEN r.reset OR r.packets_received < r.prev_packets_received THEN r.packets_received
            ELSE r.packets_received - r.prev_packets_received END AS packets_received,
        -- greatest() ignores NULL, so unknown values are caught first.
        CASE WHEN r.packets_lost IS NULL OR NOT r.reset AND r.prev_packets_lost IS NULL THEN NULL
            WHEN r.reset THEN greatest(r.packets_lost, 0)
            ELSE greatest(r.packets_lost - r.prev_packets_lost, 0) END AS packets_lost,
        CASE WHEN r.reset OR r.frames_decoded < r.prev_frames_decoded THEN r.frames_decoded
            ELSE r.frames_decoded - r.prev_frames_decoded END AS frames_decoded,
        CASE WHEN r.reset OR r.frames_dropped < r.prev_frames_dropped THEN r.frames_dropped
            ELSE r.frames_dropped - r.prev_frames_dropped END AS frames_dropped,
        CASE WHEN r.reset OR r.freeze_count < r.prev_freeze_count THEN r.freeze_count
            ELSE r.freeze_count - r.prev_freeze_count END AS freeze_count,
        CASE WHEN r.reset OR r.total_freezes_duration < r.prev_total_freezes_duration THEN r.total_freezes_duration
            ELSE r.total_freezes_duration - r.prev_total_freezes_duration END AS freeze_duration,
        CASE WHEN r.reset OR r.pause_count < r.prev_pause_count THEN r.pause_count
            ELSE r.pause_count - r.prev_pause_count END AS pause_count,
        CASE WHEN r.reset OR r.total_pauses_duration < r.prev_total_pauses_duration THEN r.total_pauses_duration
            ELSE r.total_pauses_duration - r.prev_total_pauses_duration END AS total_pauses_duration,
        CASE WHEN r.reset OR r.concealed_samples < r.prev_concealed_samples THEN r.concealed_samples
            ELSE r.concealed_samples - r.prev_concealed_samples END AS concealed_samples,
        CASE WHEN r.reset OR r.total_samples_received < r.prev_total_samples_received THEN r.total_samples_received
            ELSE r.total_samples_received - r.prev_total_samples_received END AS total_samples_received,
        CASE WHEN r.reset OR r.jitter_buffer_delay < r.prev_jitter_buffer_delay THEN r.jitter_buffer_delay
            ELSE r.jitter_buffer_delay - r.prev_jitter_buffer_delay END AS jitter_buffer_delay,
        CASE WHEN r.reset OR r.jitter_buffer_emitted_count < r.prev_jitter_buffer_emitted_count THEN r.jitter_buffer_emitted_count
            ELSE r.jitter_buffer_emitted_count - r.prev_jitter_buffer_emitted_count END AS jitter_buffer_emitted_count,
        CASE WHEN r.reset OR r.nack_count < r.prev_nack_count THEN r.nack_count
            ELSE r.nack_count - r.prev_nack_count END AS nack_count,
        CASE WHEN r.reset OR r.pli_count < r.prev_pli_count THEN r.pli_count
            ELSE r.pli_count - r.prev_pli_count END AS pli_count,
        CASE WHEN r.reset OR r.fir_count < r.prev_fir_count THEN r.fir_count
            ELSE r.fir_count - r.prev_fir_count END AS fir_count,
        CASE WHEN r.reset OR r.total_decode_time < r.prev_total_decode_time THEN r.total_decode_time
            ELSE r.total_decode_time - r.prev_total_decode_time END AS total_decode_time,
        r.jitter, r.frames_per_second AS reported_frames_per_second, r.frame_width, r.frame_height, r.audio_level
    FROM (
        SELECT w.*,
            coalesce(w.packets_received < w.prev_packets_received OR w.bytes_received < w.prev_bytes_received, false) AS reset
        FROM (
            SELECT s.time, s.channel_id, s.session_id, s.connection_id, s.stats_id, s.kind, s.ssrc,
                s.stats_timestamp, s.bytes_received, s.packets_received, s.packets_lost,
                s.frames_decoded, s.frames_dropped, s.freeze_count, s.total_freezes_duration,
                s.pause_count, s.total_pauses_duration, s.concealed_samples, s.total_samples_received,
                s.jitter_buffer_delay, s.jitter_buffer_emitted_count, s.nack_count, s.pli_count, s.fir_count,
                s.total_decode_time, s.jitter, s.frames_per_second, s.frame_width, s.frame_height, s.audio_level,
                lag(s.stats_timestamp) OVER w AS prev_stats_timestamp,
                lag(s.bytes_received) OVER w AS prev_bytes_received,
                lag(s.packets_received) OVER w AS prev_packets_received,
                lag(s.packets_lost) OVER w AS prev_packets_lost,
                lag(s.frames_decoded) OVER w AS prev_frames_decoded,
                lag(s.frames_dropped) OVER w AS prev_frames_dropped,
                lag(s.freeze_count) OVER w AS prev_freeze_count,
                lag(s.total_freezes_duration) OVER w AS prev_total_freezes_duration,
                lag(s.pause_count) OVER w AS prev_pause_count,
                lag(s.total_pauses_duration) OVER w AS prev_total_pauses_duration,
                lag(s.concealed_samples) OVER w AS prev_concealed_samples,
                lag(s.total_samples_received) OVER w AS prev_total_samples_received,
                lag(s.jitter_buffer_delay) OVER w AS prev_jitter_buffer_delay,
                lag(s.jitter_buffer_emitted_count) OVER w AS prev_jitter_buffer_emitted_count,
                lag(s.nack_count) OVER w AS prev_nack_count,
                lag(s.pli_count) OVER w AS prev_pli_count,
                lag(s.fir_count) OVER w AS prev_fir_count,
                lag(s.total_decode_time) OVER w AS prev_total_decode_time
            FROM rtc_inbound_rtp_stats s
            WINDOW w AS (PARTITION BY s.channel_id, s.session_id, s.connection_id, s.stats_id ORDER BY s.time)
        ) w
    ) r
) d;

COMMENT ON VIEW kohaku_inbound_rtp_rates IS 'Per connection, received stream (inbound-rtp) and report: counts since the stream''s previous report and rates over the stats timestamps'' interval (bitrate, packets, loss %, frames, freezes, pauses, audio concealment, jitter buffer delay, NACK/PLI/FIR per second, decode time per frame). Tolerates counter resets and missing reports; the first report of a stream has no counts.';
COMMENT ON COLUMN kohaku_inbound_rtp_rates.time IS 'Time of the report (the message timestamp).';
COMMENT ON COLUMN kohaku_inbound_rtp_rates.channel_id IS 'Sora channel id.';
COMMENT ON COLUMN kohaku_inbound_rtp_rates.session_id IS 'Sora session id.';
COMMENT ON COLUMN kohaku_inbound_rtp_rates.connection_id IS 'Sora connection id of the receiving connection.';
COMMENT ON COLUMN kohaku_inbound_rtp_rates.stats_id IS 'id of the inbound-rtp stats object: one received stream.';
COMMENT ON COLUMN kohaku_inbound_rtp_rates.kind IS 'audio or video.';
COMMENT ON COLUMN kohaku_inbound_rtp_rates.ssrc IS 'RTP SSRC of the stream.';
COMMENT ON COLUMN kohaku_inbound_rtp_rates.interval_seconds IS 'Seconds since the stream''s previous report, by stats timestamp: what every count covers and every rate divides by. Longer than the reporting interval when reports are missing; NULL at the stream''s first report.';
COMMENT ON COLUMN kohaku_inbound_rtp_rates.counter_reset IS 'True when packetsReceived or bytesReceived went down since the previous report: the stream started again and the counts start from zero.';
COMMENT ON COLUMN kohaku_inbound_rtp_rates.bytes_received IS 'Payload bytes received in the interval (bytesReceived growth).';
COMMENT ON COLUMN kohaku_inbound_rtp_rates.packets_received IS 'RTP packets received in the interval (packetsReceived growth).';
COMMENT ON COLUMN kohaku_inbound_rtp_rates.packets_lost IS 'Packets lost in the interval (packetsLost growth, never below zero).';
COMMENT ON COLUMN kohaku_inbound_rtp_rates.bitrate IS 'Received payload bitrate, bits per second: bytes_received * 8 / interval_seconds.';
COMMENT ON COLUMN kohaku_inbound_rtp_rates.packets_per_second IS 'Packets received per second: packets_received / interval_seconds.';
COMMENT ON COLUMN kohaku_inbound_rtp_rates.loss_percent IS 'Loss in percent: 100 * packets_lost / (packets_lost + packets_received); NULL when nothing was expected.';
COMMENT ON COLUMN kohaku_inbound_rtp_rates.jitter IS 'Interarrival jitter at the report, seconds (jitter).';
COMMENT ON COLUMN kohaku_inbound_rtp_rates.frames_per_second IS 'Frames per second (video): framesPerSecond at the report, or frames_decoded / interval_seconds when the browser does not report it.';
COMMENT ON COLUMN kohaku_inbound_rtp_rates.frame_width IS 'frameWidth at the report (video), pixels.';
COMMENT ON COLUMN kohaku_inbound_rtp_rates.frame_height IS 'frameHeight at the report (video), pixels.';
COMMENT ON COLUMN kohaku_inbound_rtp_rates.frames_decoded IS 'Frames decoded in the interval (framesDecoded growth).';
COMMENT ON COLUMN kohaku_inbound_rtp_rates.frames_dropped IS 'Frames dropped before decoding in the interval (framesDropped growth).';
COMMENT ON COLUMN kohaku_inbound_rtp_rates.freeze_count IS 'Video freezes in the interval (freezeCount growth).';
COMMENT ON COLUMN kohaku_inbound_rtp_rates.freeze_duration IS 'Seconds of video freezes in the interval (totalFreezesDuration growth).';
COMMENT ON COLUMN kohaku_inbound_rtp_rates.pause_count IS 'Video pauses in the interval (pauseCount growth).';
COMMENT ON COLUMN kohaku_inbound_rtp_rates.total_pauses_duration IS 'Seconds of video pauses in the interval (totalPausesDuration growth), despite its name not the running total.';
COMMENT ON COLUMN kohaku_inbound_rtp_rates.concealment_percent IS 'Audio concealment in percent: 100 * concealedSamples growth / totalSamplesReceived growth, at most 100; NULL when no sample was received.';
COMMENT ON COLUMN kohaku_inbound_rtp_rates.jitter_buffer_delay IS 'Mean jitter buffer delay of the samples or frames emitted in the interval, seconds: jitterBufferDelay growth / jitterBufferEmittedCount growth; NULL when none was emitted.';
COMMENT ON COLUMN kohaku_inbound_rtp_rates.audio_level IS 'audioLevel at the report (audio), 0 to 1.';
COMMENT ON COLUMN kohaku_inbound_rtp_rates.nack_per_second IS 'NACKs sent per second: nackCount growth / interval_seconds.';
COMMENT ON COLUMN kohaku_inbound_rtp_rates.pli_per_second IS 'Picture loss indications sent per second: pliCount growth / interval_seconds.';
COMMENT ON COLUMN kohaku_inbound_rtp_rates.fir_per_second IS 'Full intra requests sent per second: firCount growth / interval_seconds.';
COMMENT ON COLUMN kohaku_inbound_rtp_rates.decode_time_per_frame IS 'Mean decode time per frame in the interval, seconds: totalDecodeTime growth / framesDecoded growth; NULL when no frame was decoded.';
