-- kohaku_remote_inbound_rtp_rates: what the receiving end reports about each stream a
-- connection sends (remote-inbound-rtp, from its RTCP receiver reports), per report. One
-- row per remote-inbound-rtp row: per stats object (connection_id, stats_id) and report.
-- The same SQL runs on TimescaleDB and plain PostgreSQL: it reads the stats tables.
--
-- Counts are the growth since the stats object's previous report, as in
-- kohaku_inbound_rtp_rates; NULL at the first report. The receiving end's cumulative
-- packetsLost may go down a little by itself (duplicates), so a decrease counts as no loss
-- unless the round trip counters (roundTripTimeMeasurements, totalRoundTripTime) went down
-- too, which means the stream started again and the counts start from zero.
--
-- The loss percentage relates the packets lost to the packets sent in the same interval:
-- packetsSent of the matching outbound-rtp (its stats id is localId) in the same two
-- reports, looked up by the natural key. When that is not computable (no matching
-- outbound-rtp in one of the reports, nothing sent, the first report) it is the receiving
-- end's fractionLost * 100 instead; loss_percent_source says which.
--
-- lag() runs per stats object, so a filter on channel_id, session_id, connection_id or
-- stats_id reaches the stats tables; a filter on time alone is applied after lag().
CREATE VIEW kohaku_remote_inbound_rtp_rates AS
SELECT
    d.time,
    d.channel_id,
    d.session_id,
    d.connection_id,
    d.stats_id,
    d.kind,
    d.ssrc,
    d.local_id,
    d.interval_ms / 1000 AS interval_seconds,
    d.reset AS counter_reset,
    coalesce(d.total_round_trip_time / NULLIF(d.round_trip_time_measurements, 0), d.reported_round_trip_time) AS round_trip_time,
    d.fraction_lost,
    d.packets_lost,
    d.packets_sent,
    CASE WHEN d.packets_sent > 0 AND d.packets_lost IS NOT NULL
        THEN least(100, 100 * d.packets_lost::double precision / d.packets_sent)
        ELSE 100 * d.fraction_lost END AS loss_percent,
    CASE WHEN d.packets_sent > 0 AND d.packets_lost IS NOT NULL THEN 'packets'
        WHEN d.fraction_lost IS NOT NULL THEN 'fraction_lost' END AS loss_percent_source,
    d.jitter
FROM (
    SELECT
        r.time, r.channel_id, r.session_id, r.connection_id, r.stats_id, r.kind, r.ssrc, r.local_id,
        r.stats_timestamp - r.prev_stats_timestamp AS interval_ms,
        r.reset,
        CASE WHEN r.packets_lost IS NULL OR NOT r.reset AND r.prev_packets_lost IS NULL THEN NULL
            WHEN r.reset THEN greatest(r.packets_lost, 0)
            ELSE greatest(r.packets_lost - r.prev_packets_lost, 0) END AS packets_lost,
        CASE WHEN r.reset OR r.total_round_trip_time < r.prev_total_round_trip_time THEN r.total_round_trip_time
            ELSE r.total_round_trip_time - r.prev_total_round_trip_time END AS total_round_trip_time,
        CASE WHEN r.reset OR r.round_trip_time_measurements < r.prev_round_trip_time_measurements THEN r.round_trip_time_measurements
            ELSE r.round_trip_time_measurements - r.prev_round_trip_time_measurements END AS round_trip_time_measurements,
        -- The sender's own counter, between the same two reports; it went down only when
        -- the sent stream started again.
        CASE WHEN o.packets_sent < o0.packets_sent THEN o.packets_sent
            ELSE o.packets_sent - o0.packets_sent END AS packets_sent,
        r.round_trip_time AS reported_round_trip_time, r.fraction_lost, r.jitter
    FROM (
        SELECT w.*,
            coalesce(w.round_trip_time_measurements < w.prev_round_trip_time_measurements
                OR w.total_round_trip_time < w.prev_total_round_trip_time, false) AS reset
        FROM (
            SELECT s.time, s.channel_id, s.session_id, s.connection_id, s.stats_id, s.kind, s.ssrc, s.local_id,
                s.stats_timestamp, s.packets_lost, s.total_round_trip_time, s.round_trip_time_measurements,
                s.round_trip_time, s.fraction_lost, s.jitter,
                lag(s.time) OVER w AS prev_time,
                lag(s.stats_timestamp) OVER w AS prev_stats_timestamp,
                lag(s.packets_lost) OVER w AS prev_packets_lost,
                lag(s.total_round_trip_time) OVER w AS prev_total_round_trip_time,
                lag(s.round_trip_time_measurements) OVER w AS prev_round_trip_time_measurements
            FROM rtc_remote_inbound_rtp_stats s
            WINDOW w AS (PARTITION BY s.channel_id, s.session_id, s.connection_id, s.stats_id ORDER BY s.time)
        ) w
    ) r
    LEFT JOIN rtc_outbound_rtp_stats o
        ON o.connection_id = r.connection_id AND o.stats_id = r.local_id AND o.time = r.time
    LEFT JOIN rtc_outbound_rtp_stats o0
        ON o0.connection_id = r.connection_id AND o0.stats_id = r.local_id AND o0.time = r.prev_time
) d;

COMMENT ON VIEW kohaku_remote_inbound_rtp_rates IS 'Per connection, sent stream and report, what the receiving end reports (remote-inbound-rtp): round trip time, fraction lost, packets lost since the previous report and loss %, jitter. Tolerates counter resets and missing reports; the first report of a stream has no counts.';
COMMENT ON COLUMN kohaku_remote_inbound_rtp_rates.time IS 'Time of the report (the message timestamp).';
COMMENT ON COLUMN kohaku_remote_inbound_rtp_rates.channel_id IS 'Sora channel id.';
COMMENT ON COLUMN kohaku_remote_inbound_rtp_rates.session_id IS 'Sora session id.';
COMMENT ON COLUMN kohaku_remote_inbound_rtp_rates.connection_id IS 'Sora connection id of the sending connection.';
COMMENT ON COLUMN kohaku_remote_inbound_rtp_rates.stats_id IS 'id of the remote-inbound-rtp stats object.';
COMMENT ON COLUMN kohaku_remote_inbound_rtp_rates.kind IS 'audio or video.';
COMMENT ON COLUMN kohaku_remote_inbound_rtp_rates.ssrc IS 'RTP SSRC of the sent stream.';
COMMENT ON COLUMN kohaku_remote_inbound_rtp_rates.local_id IS 'localId: the stats id of the outbound-rtp object of the sent stream.';
COMMENT ON COLUMN kohaku_remote_inbound_rtp_rates.interval_seconds IS 'Seconds since the stats object''s previous report, by stats timestamp: what every count covers. NULL at its first report.';
COMMENT ON COLUMN kohaku_remote_inbound_rtp_rates.counter_reset IS 'True when roundTripTimeMeasurements or totalRoundTripTime went down since the previous report: the stream started again and the counts start from zero.';
COMMENT ON COLUMN kohaku_remote_inbound_rtp_rates.round_trip_time IS 'Round trip time, seconds: the mean of the measurements made in the interval (totalRoundTripTime growth / roundTripTimeMeasurements growth), else roundTripTime at the report.';
COMMENT ON COLUMN kohaku_remote_inbound_rtp_rates.fraction_lost IS 'fractionLost at the report, 0 to 1: the share lost in the receiving end''s last RTCP interval.';
COMMENT ON COLUMN kohaku_remote_inbound_rtp_rates.packets_lost IS 'Packets the receiving end reported lost in the interval (packetsLost growth, never below zero).';
COMMENT ON COLUMN kohaku_remote_inbound_rtp_rates.packets_sent IS 'Packets sent in the interval by the matching outbound-rtp (localId), between the same two reports; NULL when one of them lacks it.';
COMMENT ON COLUMN kohaku_remote_inbound_rtp_rates.loss_percent IS 'Loss in percent: 100 * packets_lost / packets_sent, at most 100 (the receiver''s reports lag the sender''s counter), when computable; else 100 * fraction_lost. loss_percent_source says which.';
COMMENT ON COLUMN kohaku_remote_inbound_rtp_rates.loss_percent_source IS 'packets when loss_percent is packets_lost / packets_sent, fraction_lost when it is fractionLost * 100, NULL when neither is known.';
COMMENT ON COLUMN kohaku_remote_inbound_rtp_rates.jitter IS 'Interarrival jitter that the receiving end reports, seconds.';
