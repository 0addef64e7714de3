-- Issue intervals (kohaku_issue, migration 0006): for every stream of every participant,
-- the runs of consecutive reports that show one kind of trouble, judged against
-- kohaku_issue_threshold. schema.Analyze runs this file with $1 = since, $2 = until and
-- $3 = the connection ids to analyze (NULL for all); it rewrites the intervals of the
-- reports of those connections stored in [$1, $2] and nothing else: each source reads only
-- their objects, and everything after reads the objects the sources found.
--
-- How. Each source below reads the reports of [$1, $2] of one stats table, and for each
-- stats object (or connection, for the connection-wide kinds: stats_id NULL) the report
-- before $1 too (p), so that every report of the period has its predecessor: a report is
-- judged from its own figures and the growth of the counters since the previous report of
-- the same object. A report more than an hour after the previous one has no predecessor and
-- starts a new run. Each report gets a sequence number seq within its object (p is 0); the
-- reports that show an issue go to kohaku_issue_flag, and consecutive numbers make one
-- interval. started_at is the first report with the issue (for missing_reports the report
-- before the gap), ended_at the last; evidence holds the worst figure of each name (the
-- largest number; for words, the last in sort order); an interval is critical when any of
-- its reports is.
--
-- Why the result does not depend on how the time is cut. The reports before $1 and after
-- $2 are not judged again: what the stored intervals say of them stands. A stored interval
-- holding p (the head) or the first report after $2 (q, the tail) joins the run beside it as
-- one pseudo-report with its start, end, severity and evidence, so a run that crosses $1 or
-- $2 comes out whole, as if the whole time were analyzed at once, and a run that no longer
-- reaches the boundary keeps the part beyond it. Then the stored intervals of the objects
-- read, from the one holding p to the one holding q, are replaced by the new ones: those
-- equal in every column are left as they are (same id, same analyzed_at), the others are
-- deleted and inserted. The figures of a head or tail come from the earlier analysis;
-- after a change of thresholds, analyze the whole period that the change should reach.
--
-- Reads are bounded by the period: each stats object costs one index probe for p and one
-- for q in the natural key index (connection_id, stats_id, time), not a scan of its
-- history (which is why this does not read the kohaku_*_rates views: a time filter cannot
-- pass through their lag() over whole tables). Its reports from p on, and the candidate
-- pair and candidate of each transport report, are read by a LATERAL subquery per object
-- that OFFSET 0 keeps whole: written as joins, the planner hashed the whole stats tables
-- once a period held a few hundred objects, a read that grew with the stored history
-- (9.6 s instead of 1 s for the transports of 30 s after 40 minutes of 1,000 connections;
-- schema/analysis_reads_test.go).

CREATE TEMP TABLE kohaku_issue_limits ON COMMIT DROP AS
SELECT
    coalesce(max(value) FILTER (WHERE kind = 'video_freeze' AND name = 'enabled'), 1) <> 0 AS video_freeze_on,
    max(value) FILTER (WHERE kind = 'video_freeze' AND name = 'warning') AS video_freeze_warning,
    max(value) FILTER (WHERE kind = 'video_freeze' AND name = 'critical') AS video_freeze_critical,
    coalesce(max(value) FILTER (WHERE kind = 'packet_loss' AND name = 'enabled'), 1) <> 0 AS packet_loss_on,
    max(value) FILTER (WHERE kind = 'packet_loss' AND name = 'warning') AS packet_loss_warning,
    max(value) FILTER (WHERE kind = 'packet_loss' AND name = 'critical') AS packet_loss_critical,
    coalesce(max(value) FILTER (WHERE kind = 'packet_loss' AND name = 'min_packets'), 0) AS packet_loss_min_packets,
    coalesce(max(value) FILTER (WHERE kind = 'remote_packet_loss' AND name = 'enabled'), 1) <> 0 AS remote_packet_loss_on,
    max(value) FILTER (WHERE kind = 'remote_packet_loss' AND name = 'warning') AS remote_packet_loss_warning,
    max(value) FILTER (WHERE kind = 'remote_packet_loss' AND name = 'critical') AS remote_packet_loss_critical,
    coalesce(max(value) FILTER (WHERE kind = 'high_rtt' AND name = 'enabled'), 1) <> 0 AS high_rtt_on,
    max(value) FILTER (WHERE kind = 'high_rtt' AND name = 'warning') AS high_rtt_warning,
    max(value) FILTER (WHERE kind = 'high_rtt' AND name = 'critical') AS high_rtt_critical,
    coalesce(max(value) FILTER (WHERE kind = 'high_jitter' AND name = 'enabled'), 1) <> 0 AS high_jitter_on,
    max(value) FILTER (WHERE kind = 'high_jitter' AND name = 'warning') AS high_jitter_warning,
    max(value) FILTER (WHERE kind = 'high_jitter' AND name = 'critical') AS high_jitter_critical,
    coalesce(max(value) FILTER (WHERE kind = 'audio_concealment' AND name = 'enabled'), 1) <> 0 AS audio_concealment_on,
    max(value) FILTER (WHERE kind = 'audio_concealment' AND name = 'warning') AS audio_concealment_warning,
    max(value) FILTER (WHERE kind = 'audio_concealment' AND name = 'critical') AS audio_concealment_critical,
    coalesce(max(value) FILTER (WHERE kind = 'quality_limited_cpu' AND name = 'enabled'), 1) <> 0 AS quality_limited_cpu_on,
    max(value) FILTER (WHERE kind = 'quality_limited_cpu' AND name = 'warning') AS quality_limited_cpu_warning,
    max(value) FILTER (WHERE kind = 'quality_limited_cpu' AND name = 'critical') AS quality_limited_cpu_critical,
    coalesce(max(value) FILTER (WHERE kind = 'quality_limited_bandwidth' AND name = 'enabled'), 1) <> 0 AS quality_limited_bandwidth_on,
    max(value) FILTER (WHERE kind = 'quality_limited_bandwidth' AND name = 'warning') AS quality_limited_bandwidth_warning,
    max(value) FILTER (WHERE kind = 'quality_limited_bandwidth' AND name = 'critical') AS quality_limited_bandwidth_critical,
    coalesce(max(value) FILTER (WHERE kind = 'media_stopped' AND name = 'enabled'), 1) <> 0 AS media_stopped_on,
    max(value) FILTER (WHERE kind = 'media_stopped' AND name = 'warning') AS media_stopped_warning,
    max(value) FILTER (WHERE kind = 'media_stopped' AND name = 'critical') AS media_stopped_critical,
    coalesce(max(value) FILTER (WHERE kind = 'relayed_or_tcp' AND name = 'enabled'), 1) <> 0 AS relayed_or_tcp_on,
    coalesce(max(value) FILTER (WHERE kind = 'ice_dtls_not_connected' AND name = 'enabled'), 1) <> 0 AS ice_dtls_not_connected_on,
    coalesce(max(value) FILTER (WHERE kind = 'candidate_pair_switched' AND name = 'enabled'), 1) <> 0 AS candidate_pair_switched_on,
    coalesce(max(value) FILTER (WHERE kind = 'missing_reports' AND name = 'enabled'), 1) <> 0 AS missing_reports_on,
    max(value) FILTER (WHERE kind = 'missing_reports' AND name = 'warning') AS missing_reports_warning,
    max(value) FILTER (WHERE kind = 'missing_reports' AND name = 'critical') AS missing_reports_critical
FROM kohaku_issue_threshold;

-- The objects read, one row per source and object: the kinds that the source judges, p and
-- q, the earliest report read (p, or for missing_reports the fourth report before $1) and,
-- filled by the source's second statement, the number and time of its last report in the
-- period. Each source analyzes it after adding its objects: without statistics the planner
-- takes a temporary table for a few rows and joins the source's objects with a nested loop,
-- which costs the square of their number (1,828 objects: 3.3 million comparisons, seconds).
CREATE TEMP TABLE kohaku_issue_scope (
    src           text NOT NULL,
    channel_id    text NOT NULL,
    session_id    text NOT NULL,
    connection_id text NOT NULL,
    stats_id      text,
    kinds         text[] NOT NULL,
    p_time        timestamptz,
    q_time        timestamptz,
    from_time     timestamptz,
    last_seq      bigint,
    last_time     timestamptz
) ON COMMIT DROP;

-- The reports with an issue, and the heads and tails of the stored intervals.
CREATE TEMP TABLE kohaku_issue_flag (
    channel_id    text NOT NULL,
    session_id    text NOT NULL,
    connection_id text NOT NULL,
    stats_id      text,
    kind          text NOT NULL,
    seq           bigint NOT NULL,
    start_time    timestamptz NOT NULL,
    time          timestamptz NOT NULL,
    critical      boolean NOT NULL,
    evidence      jsonb NOT NULL
) ON COMMIT DROP;

-- Source 1: received streams (inbound-rtp).
INSERT INTO kohaku_issue_scope (src, channel_id, session_id, connection_id, stats_id, kinds, p_time, q_time, from_time)
SELECT 'inbound', s.channel_id, s.session_id, s.connection_id, s.stats_id,
    ARRAY['packet_loss', 'high_jitter', 'video_freeze', 'audio_concealment', 'media_stopped'], p.time, q.time, p.time
FROM (SELECT connection_id, stats_id, min(channel_id) AS channel_id, min(session_id) AS session_id
      FROM rtc_inbound_rtp_stats WHERE time >= $1 AND time <= $2 AND (connection_id = ANY($3::text[]) OR $3::text[] IS NULL)
      GROUP BY connection_id, stats_id) s
LEFT JOIN LATERAL (SELECT x.time FROM rtc_inbound_rtp_stats x
    WHERE x.connection_id = s.connection_id AND x.stats_id = s.stats_id AND x.time < $1 AND x.time >= $1 - interval '1 hour'
    ORDER BY x.time DESC LIMIT 1) p ON true
LEFT JOIN LATERAL (SELECT x.time FROM rtc_inbound_rtp_stats x
    WHERE x.connection_id = s.connection_id AND x.stats_id = s.stats_id AND x.time > $2 AND x.time <= $2 + interval '1 hour'
    ORDER BY x.time LIMIT 1) q ON true;
ANALYZE kohaku_issue_scope; -- statistics for the plans below (see the table)

WITH r AS (
    SELECT sc.channel_id, sc.session_id, x.connection_id, x.stats_id, x.time, x.kind, x.stats_timestamp,
        x.packets_received, x.packets_lost, x.jitter, x.freeze_count, x.total_freezes_duration,
        x.concealed_samples, x.total_samples_received, sc.p_time IS NOT NULL AS has_p
    FROM kohaku_issue_scope sc
    CROSS JOIN LATERAL (SELECT x.connection_id, x.stats_id, x.time, x.kind, x.stats_timestamp,
            x.packets_received, x.packets_lost, x.jitter, x.freeze_count, x.total_freezes_duration,
            x.concealed_samples, x.total_samples_received
        FROM rtc_inbound_rtp_stats x WHERE x.connection_id = sc.connection_id AND x.stats_id = sc.stats_id
        AND x.time >= coalesce(sc.from_time, $1) AND x.time <= $2 OFFSET 0) x
    WHERE sc.src = 'inbound'
), l AS (
    SELECT r.*,
        lag(time) OVER w AS prev_time,
        lag(stats_timestamp) OVER w AS prev_stats_timestamp,
        lag(packets_received) OVER w AS prev_packets_received,
        lag(packets_lost) OVER w AS prev_packets_lost,
        lag(freeze_count) OVER w AS prev_freeze_count,
        lag(total_freezes_duration) OVER w AS prev_total_freezes_duration,
        lag(concealed_samples) OVER w AS prev_concealed_samples,
        lag(total_samples_received) OVER w AS prev_total_samples_received,
        row_number() OVER w AS rn
    FROM r
    WINDOW w AS (PARTITION BY connection_id, stats_id ORDER BY time)
), g AS (
    SELECT l.*,
        coalesce(time - prev_time <= interval '1 hour', false) AS has_prev,
        rn + count(*) FILTER (WHERE time - prev_time > interval '1 hour') OVER w - has_p::int AS seq
    FROM l
    WINDOW w AS (PARTITION BY connection_id, stats_id ORDER BY time)
), d AS (
    SELECT g.*,
        CASE WHEN has_prev THEN coalesce(nullif(stats_timestamp - prev_stats_timestamp, 0) / 1000,
            extract(epoch FROM time - prev_time)::double precision) END AS seconds,
        has_prev AND packets_received >= prev_packets_received AS ok
    FROM g
), m AS (
    SELECT d.*,
        CASE WHEN ok THEN packets_received - prev_packets_received END AS received,
        CASE WHEN ok THEN greatest(packets_lost - prev_packets_lost, 0) END AS lost,
        CASE WHEN ok AND freeze_count >= prev_freeze_count THEN freeze_count - prev_freeze_count END AS freezes,
        CASE WHEN ok AND total_freezes_duration >= prev_total_freezes_duration
            THEN total_freezes_duration - prev_total_freezes_duration END AS freeze_seconds,
        CASE WHEN ok AND concealed_samples >= prev_concealed_samples AND total_samples_received > prev_total_samples_received
            THEN 100.0 * (concealed_samples - prev_concealed_samples) / (total_samples_received - prev_total_samples_received) END AS concealed_percent
    FROM d
), k AS (
    SELECT m.*,
        100.0 * lost / nullif(lost + received, 0) AS loss_percent,
        received / nullif(seconds, 0) AS packets_per_second
    FROM m
), last AS (
    UPDATE kohaku_issue_scope sc SET last_seq = z.seq, last_time = z.time
    FROM (SELECT connection_id, stats_id, max(seq) AS seq, max(time) AS time FROM k GROUP BY connection_id, stats_id) z
    WHERE sc.src = 'inbound' AND sc.connection_id = z.connection_id AND sc.stats_id = z.stats_id
)
INSERT INTO kohaku_issue_flag (channel_id, session_id, connection_id, stats_id, kind, seq, start_time, time, critical, evidence)
SELECT k.channel_id, k.session_id, k.connection_id, k.stats_id, f.kind, k.seq, k.time, k.time, coalesce(f.critical, false),
    -- Built for the flagged rows only, not for every report and kind.
    CASE f.kind
        WHEN 'packet_loss' THEN jsonb_build_object('loss_percent', round(loss_percent::numeric, 2), 'packets_lost', lost, 'packets_expected', lost + received)
        WHEN 'high_jitter' THEN jsonb_build_object('jitter', round(jitter::numeric, 4))
        WHEN 'video_freeze' THEN jsonb_build_object('freezes', freezes, 'freeze_seconds', round(freeze_seconds::numeric, 3))
        WHEN 'audio_concealment' THEN jsonb_build_object('concealed_percent', round(concealed_percent::numeric, 2))
        WHEN 'media_stopped' THEN jsonb_build_object('packets_per_second', round(packets_per_second::numeric, 2))
    END
FROM k
CROSS JOIN kohaku_issue_limits t
CROSS JOIN LATERAL (VALUES
    ('packet_loss', t.packet_loss_on AND lost + received >= t.packet_loss_min_packets AND loss_percent >= t.packet_loss_warning,
        loss_percent >= t.packet_loss_critical),
    ('high_jitter', t.high_jitter_on AND jitter >= t.high_jitter_warning, jitter >= t.high_jitter_critical),
    ('video_freeze', t.video_freeze_on AND k.kind = 'video' AND (freezes >= t.video_freeze_warning OR freeze_seconds >= t.video_freeze_critical),
        freeze_seconds >= t.video_freeze_critical),
    ('audio_concealment', t.audio_concealment_on AND k.kind = 'audio' AND concealed_percent >= t.audio_concealment_warning,
        concealed_percent >= t.audio_concealment_critical),
    ('media_stopped', t.media_stopped_on AND prev_packets_received > 0 AND packets_per_second <= t.media_stopped_warning,
        packets_per_second <= t.media_stopped_critical)
) AS f(kind, flagged, critical)
WHERE k.time >= $1 AND f.flagged;

-- Source 2: sent streams (outbound-rtp): quality limitation and stopped media.
INSERT INTO kohaku_issue_scope (src, channel_id, session_id, connection_id, stats_id, kinds, p_time, q_time, from_time)
SELECT 'outbound', s.channel_id, s.session_id, s.connection_id, s.stats_id,
    ARRAY['quality_limited_cpu', 'quality_limited_bandwidth', 'media_stopped'], p.time, q.time, p.time
FROM (SELECT connection_id, stats_id, min(channel_id) AS channel_id, min(session_id) AS session_id
      FROM rtc_outbound_rtp_stats WHERE time >= $1 AND time <= $2 AND (connection_id = ANY($3::text[]) OR $3::text[] IS NULL)
      GROUP BY connection_id, stats_id) s
LEFT JOIN LATERAL (SELECT x.time FROM rtc_outbound_rtp_stats x
    WHERE x.connection_id = s.connection_id AND x.stats_id = s.stats_id AND x.time < $1 AND x.time >= $1 - interval '1 hour'
    ORDER BY x.time DESC LIMIT 1) p ON true
LEFT JOIN LATERAL (SELECT x.time FROM rtc_outbound_rtp_stats x
    WHERE x.connection_id = s.connection_id AND x.stats_id = s.stats_id AND x.time > $2 AND x.time <= $2 + interval '1 hour'
    ORDER BY x.time LIMIT 1) q ON true;
ANALYZE kohaku_issue_scope; -- statistics for the plans below (see the table)

WITH r AS (
    SELECT sc.channel_id, sc.session_id, x.connection_id, x.stats_id, x.time, x.kind, x.stats_timestamp,
        x.packets_sent, x.active, x.quality_limitation_reason, x.quality_limitation_durations, sc.p_time IS NOT NULL AS has_p
    FROM kohaku_issue_scope sc
    CROSS JOIN LATERAL (SELECT x.connection_id, x.stats_id, x.time, x.kind, x.stats_timestamp,
            x.packets_sent, x.active, x.quality_limitation_reason, x.quality_limitation_durations
        FROM rtc_outbound_rtp_stats x WHERE x.connection_id = sc.connection_id AND x.stats_id = sc.stats_id
        AND x.time >= coalesce(sc.from_time, $1) AND x.time <= $2 OFFSET 0) x
    WHERE sc.src = 'outbound'
), l AS (
    SELECT r.*,
        lag(time) OVER w AS prev_time,
        lag(stats_timestamp) OVER w AS prev_stats_timestamp,
        lag(packets_sent) OVER w AS prev_packets_sent,
        lag(quality_limitation_durations) OVER w AS prev_durations,
        row_number() OVER w AS rn
    FROM r
    WINDOW w AS (PARTITION BY connection_id, stats_id ORDER BY time)
), g AS (
    SELECT l.*,
        coalesce(time - prev_time <= interval '1 hour', false) AS has_prev,
        rn + count(*) FILTER (WHERE time - prev_time > interval '1 hour') OVER w - has_p::int AS seq
    FROM l
    WINDOW w AS (PARTITION BY connection_id, stats_id ORDER BY time)
), d AS (
    SELECT g.*,
        CASE WHEN has_prev THEN coalesce(nullif(stats_timestamp - prev_stats_timestamp, 0) / 1000,
            extract(epoch FROM time - prev_time)::double precision) END AS seconds,
        has_prev AND packets_sent >= prev_packets_sent AS ok
    FROM g
), k AS (
    SELECT d.*,
        CASE WHEN ok THEN (packets_sent - prev_packets_sent) / nullif(seconds, 0) END AS packets_per_second,
        -- The share of the interval that the encoder spent limited by cpu or bandwidth:
        -- from the growth of qualityLimitationDurations (seconds), or, for a browser
        -- without it, all or nothing from qualityLimitationReason.
        CASE WHEN quality_limitation_durations ? 'cpu' AND prev_durations ? 'cpu' THEN
                CASE WHEN ok THEN least(greatest(100 * ((quality_limitation_durations->>'cpu')::double precision
                    - (prev_durations->>'cpu')::double precision) / nullif(seconds, 0), 0), 100) END
            WHEN quality_limitation_durations IS NULL AND quality_limitation_reason IS NOT NULL THEN
                CASE WHEN quality_limitation_reason = 'cpu' THEN 100 ELSE 0 END END AS cpu_percent,
        CASE WHEN quality_limitation_durations ? 'bandwidth' AND prev_durations ? 'bandwidth' THEN
                CASE WHEN ok THEN least(greatest(100 * ((quality_limitation_durations->>'bandwidth')::double precision
                    - (prev_durations->>'bandwidth')::double precision) / nullif(seconds, 0), 0), 100) END
            WHEN quality_limitation_durations IS NULL AND quality_limitation_reason IS NOT NULL THEN
                CASE WHEN quality_limitation_reason = 'bandwidth' THEN 100 ELSE 0 END END AS bandwidth_percent
    FROM d
), last AS (
    UPDATE kohaku_issue_scope sc SET last_seq = z.seq, last_time = z.time
    FROM (SELECT connection_id, stats_id, max(seq) AS seq, max(time) AS time FROM k GROUP BY connection_id, stats_id) z
    WHERE sc.src = 'outbound' AND sc.connection_id = z.connection_id AND sc.stats_id = z.stats_id
)
INSERT INTO kohaku_issue_flag (channel_id, session_id, connection_id, stats_id, kind, seq, start_time, time, critical, evidence)
SELECT k.channel_id, k.session_id, k.connection_id, k.stats_id, f.kind, k.seq, k.time, k.time, coalesce(f.critical, false),
    -- Built for the flagged rows only, not for every report and kind.
    CASE f.kind
        WHEN 'quality_limited_cpu' THEN jsonb_build_object('limited_percent', round(cpu_percent::numeric, 1))
        WHEN 'quality_limited_bandwidth' THEN jsonb_build_object('limited_percent', round(bandwidth_percent::numeric, 1))
        WHEN 'media_stopped' THEN jsonb_build_object('packets_per_second', round(packets_per_second::numeric, 2))
    END
FROM k
CROSS JOIN kohaku_issue_limits t
CROSS JOIN LATERAL (VALUES
    ('quality_limited_cpu', t.quality_limited_cpu_on AND k.kind = 'video' AND cpu_percent >= t.quality_limited_cpu_warning,
        cpu_percent >= t.quality_limited_cpu_critical),
    ('quality_limited_bandwidth', t.quality_limited_bandwidth_on AND k.kind = 'video' AND bandwidth_percent >= t.quality_limited_bandwidth_warning,
        bandwidth_percent >= t.quality_limited_bandwidth_critical),
    ('media_stopped', t.media_stopped_on AND active IS NOT FALSE AND prev_packets_sent > 0 AND packets_per_second <= t.media_stopped_warning,
        packets_per_second <= t.media_stopped_critical)
) AS f(kind, flagged, critical)
WHERE k.time >= $1 AND f.flagged;

-- Source 3: what the remote side reports about our sent streams (remote-inbound-rtp).
INSERT INTO kohaku_issue_scope (src, channel_id, session_id, connection_id, stats_id, kinds, p_time, q_time, from_time)
SELECT 'remote_inbound', s.channel_id, s.session_id, s.connection_id, s.stats_id, ARRAY['remote_packet_loss'], p.time, q.time, p.time
FROM (SELECT connection_id, stats_id, min(channel_id) AS channel_id, min(session_id) AS session_id
      FROM rtc_remote_inbound_rtp_stats WHERE time >= $1 AND time <= $2 AND (connection_id = ANY($3::text[]) OR $3::text[] IS NULL)
      GROUP BY connection_id, stats_id) s
LEFT JOIN LATERAL (SELECT x.time FROM rtc_remote_inbound_rtp_stats x
    WHERE x.connection_id = s.connection_id AND x.stats_id = s.stats_id AND x.time < $1 AND x.time >= $1 - interval '1 hour'
    ORDER BY x.time DESC LIMIT 1) p ON true
LEFT JOIN LATERAL (SELECT x.time FROM rtc_remote_inbound_rtp_stats x
    WHERE x.connection_id = s.connection_id AND x.stats_id = s.stats_id AND x.time > $2 AND x.time <= $2 + interval '1 hour'
    ORDER BY x.time LIMIT 1) q ON true;
ANALYZE kohaku_issue_scope; -- statistics for the plans below (see the table)

WITH r AS (
    SELECT sc.channel_id, sc.session_id, x.connection_id, x.stats_id, x.time, x.fraction_lost, sc.p_time IS NOT NULL AS has_p
    FROM kohaku_issue_scope sc
    CROSS JOIN LATERAL (SELECT x.connection_id, x.stats_id, x.time, x.fraction_lost
        FROM rtc_remote_inbound_rtp_stats x WHERE x.connection_id = sc.connection_id AND x.stats_id = sc.stats_id
        AND x.time >= coalesce(sc.from_time, $1) AND x.time <= $2 OFFSET 0) x
    WHERE sc.src = 'remote_inbound'
), l AS (
    SELECT r.*, lag(time) OVER w AS prev_time, row_number() OVER w AS rn
    FROM r
    WINDOW w AS (PARTITION BY connection_id, stats_id ORDER BY time)
), k AS (
    SELECT l.*,
        rn + count(*) FILTER (WHERE time - prev_time > interval '1 hour') OVER w - has_p::int AS seq,
        100 * fraction_lost AS loss_percent
    FROM l
    WINDOW w AS (PARTITION BY connection_id, stats_id ORDER BY time)
), last AS (
    UPDATE kohaku_issue_scope sc SET last_seq = z.seq, last_time = z.time
    FROM (SELECT connection_id, stats_id, max(seq) AS seq, max(time) AS time FROM k GROUP BY connection_id, stats_id) z
    WHERE sc.src = 'remote_inbound' AND sc.connection_id = z.connection_id AND sc.stats_id = z.stats_id
)
INSERT INTO kohaku_issue_flag (channel_id, session_id, connection_id, stats_id, kind, seq, start_time, time, critical, evidence)
SELECT k.channel_id, k.session_id, k.connection_id, k.stats_id, 'remote_packet_loss', k.seq, k.time, k.time,
    coalesce(loss_percent >= t.remote_packet_loss_critical, false),
    jsonb_build_object('loss_percent', round(loss_percent::numeric, 2))
FROM k
CROSS JOIN kohaku_issue_limits t
WHERE k.time >= $1 AND t.remote_packet_loss_on AND loss_percent >= t.remote_packet_loss_warning;

-- Source 4: the connection's transport (connection-wide): ICE and DTLS state, the selected
-- candidate pair, its round-trip time and its local candidate. With several transports
-- (no BUNDLE) a report is judged by the one with a selected pair.
INSERT INTO kohaku_issue_scope (src, channel_id, session_id, connection_id, stats_id, kinds, p_time, q_time, from_time)
SELECT 'transport', s.channel_id, s.session_id, s.connection_id, NULL,
    ARRAY['ice_dtls_not_connected', 'candidate_pair_switched', 'relayed_or_tcp', 'high_rtt'], p.time, q.time, p.time
FROM (SELECT connection_id, min(channel_id) AS channel_id, min(session_id) AS session_id
      FROM rtc_transport_stats WHERE time >= $1 AND time <= $2 AND (connection_id = ANY($3::text[]) OR $3::text[] IS NULL)
      GROUP BY connection_id) s
LEFT JOIN LATERAL (SELECT x.time FROM rtc_transport_stats x
    WHERE x.connection_id = s.connection_id AND x.time < $1 AND x.time >= $1 - interval '1 hour'
    ORDER BY x.time DESC LIMIT 1) p ON true
LEFT JOIN LATERAL (SELECT x.time FROM rtc_transport_stats x
    WHERE x.connection_id = s.connection_id AND x.time > $2 AND x.time <= $2 + interval '1 hour'
    ORDER BY x.time LIMIT 1) q ON true;
ANALYZE kohaku_issue_scope; -- statistics for the plans below (see the table)

WITH r AS (
    SELECT DISTINCT ON (x.connection_id, x.time)
        sc.channel_id, sc.session_id, x.connection_id, x.time, x.ice_state, x.dtls_state, x.selected_candidate_pair_id,
        cp.current_round_trip_time, lc.candidate_type, lc.protocol, lc.relay_protocol, sc.p_time IS NOT NULL AS has_p
    FROM kohaku_issue_scope sc
    CROSS JOIN LATERAL (SELECT x.connection_id, x.stats_id, x.time, x.ice_state, x.dtls_state, x.selected_candidate_pair_id
        FROM rtc_transport_stats x WHERE x.connection_id = sc.connection_id
        AND x.time >= coalesce(sc.from_time, $1) AND x.time <= $2 OFFSET 0) x
    LEFT JOIN LATERAL (SELECT cp.current_round_trip_time, cp.local_candidate_id FROM rtc_candidate_pair_stats cp
        WHERE cp.connection_id = x.connection_id AND cp.stats_id = x.selected_candidate_pair_id AND cp.time = x.time OFFSET 0) cp ON true
    LEFT JOIN LATERAL (SELECT lc.candidate_type, lc.protocol, lc.relay_protocol FROM rtc_ice_candidate_stats lc
        WHERE lc.connection_id = x.connection_id AND lc.stats_id = cp.local_candidate_id AND lc.time = x.time OFFSET 0) lc ON true
    WHERE sc.src = 'transport'
    ORDER BY x.connection_id, x.time, x.selected_candidate_pair_id IS NULL, x.stats_id
), l AS (
    SELECT r.*,
        lag(time) OVER w AS prev_time,
        lag(selected_candidate_pair_id) OVER w AS prev_pair_id,
        row_number() OVER w AS rn
    FROM r
    WINDOW w AS (PARTITION BY connection_id ORDER BY time)
), k AS (
    SELECT l.*,
        coalesce(time - prev_time <= interval '1 hour', false) AS has_prev,
        rn + count(*) FILTER (WHERE time - prev_time > interval '1 hour') OVER w - has_p::int AS seq
    FROM l
    WINDOW w AS (PARTITION BY connection_id ORDER BY time)
), last AS (
    UPDATE kohaku_issue_scope sc SET last_seq = z.seq, last_time = z.time
    FROM (SELECT connection_id, max(seq) AS seq, max(time) AS time FROM k GROUP BY connection_id) z
    WHERE sc.src = 'transport' AND sc.connection_id = z.connection_id
)
INSERT INTO kohaku_issue_flag (channel_id, session_id, connection_id, stats_id, kind, seq, start_time, time, critical, evidence)
SELECT k.channel_id, k.session_id, k.connection_id, NULL, f.kind, k.seq, k.time, k.time, coalesce(f.critical, false),
    -- Built for the flagged rows only, not for every report and kind.
    CASE f.kind
        WHEN 'ice_dtls_not_connected' THEN jsonb_strip_nulls(jsonb_build_object('ice_state', ice_state, 'dtls_state', dtls_state))
        WHEN 'candidate_pair_switched' THEN jsonb_build_object('selected_candidate_pair_id', selected_candidate_pair_id)
        WHEN 'relayed_or_tcp' THEN jsonb_strip_nulls(jsonb_build_object('candidate_type', candidate_type, 'protocol', protocol, 'relay_protocol', relay_protocol))
        WHEN 'high_rtt' THEN jsonb_build_object('round_trip_time', round(current_round_trip_time::numeric, 4))
    END
FROM k
CROSS JOIN kohaku_issue_limits t
CROSS JOIN LATERAL (VALUES
    ('ice_dtls_not_connected', t.ice_dtls_not_connected_on
        AND (ice_state NOT IN ('connected', 'completed') OR dtls_state <> 'connected'),
        coalesce(ice_state IN ('failed', 'closed'), false) OR coalesce(dtls_state IN ('failed', 'closed'), false)),
    ('candidate_pair_switched', t.candidate_pair_switched_on AND has_prev
        AND selected_candidate_pair_id <> prev_pair_id,
        false),
    ('relayed_or_tcp', t.relayed_or_tcp_on AND (candidate_type = 'relay' OR protocol = 'tcp'),
        candidate_type = 'relay' AND coalesce(relay_protocol IN ('tcp', 'tls'), false)),
    ('high_rtt', t.high_rtt_on AND current_round_trip_time >= t.high_rtt_warning,
        current_round_trip_time >= t.high_rtt_critical)
) AS f(kind, flagged, critical)
WHERE k.time >= $1 AND coalesce(f.flagged, false);

-- Source 5: the connection's reports themselves (connection-wide), one per peer-connection
-- stats object, which every browser reports: gaps. The reporting interval is estimated at
-- each report as the shortest of the three gaps before it, so the three reports before p
-- are read too.
INSERT INTO kohaku_issue_scope (src, channel_id, session_id, connection_id, stats_id, kinds, p_time, q_time, from_time)
SELECT 'reports', s.channel_id, s.session_id, s.connection_id, NULL, ARRAY['missing_reports'], p.p_time, q.time, p.from_time
FROM (SELECT connection_id, min(channel_id) AS channel_id, min(session_id) AS session_id
      FROM rtc_peer_connection_stats WHERE time >= $1 AND time <= $2 AND (connection_id = ANY($3::text[]) OR $3::text[] IS NULL)
      GROUP BY connection_id) s
LEFT JOIN LATERAL (SELECT max(b.time) AS p_time, min(b.time) AS from_time FROM (SELECT x.time FROM rtc_peer_connection_stats x
    WHERE x.connection_id = s.connection_id AND x.time < $1 AND x.time >= $1 - interval '1 hour'
    ORDER BY x.time DESC LIMIT 4) b) p ON true
LEFT JOIN LATERAL (SELECT x.time FROM rtc_peer_connection_stats x
    WHERE x.connection_id = s.connection_id AND x.time > $2 AND x.time <= $2 + interval '1 hour'
    ORDER BY x.time LIMIT 1) q ON true;
ANALYZE kohaku_issue_scope; -- statistics for the plans below (see the table)

WITH r AS (
    SELECT DISTINCT sc.channel_id, sc.session_id, x.connection_id, x.time
    FROM kohaku_issue_scope sc
    CROSS JOIN LATERAL (SELECT x.connection_id, x.time FROM rtc_peer_connection_stats x WHERE x.connection_id = sc.connection_id
        AND x.time >= coalesce(sc.from_time, $1) AND x.time <= $2 OFFSET 0) x
    WHERE sc.src = 'reports'
), l AS (
    SELECT r.*,
        lag(time) OVER w AS prev_time,
        CASE WHEN time - lag(time) OVER w <= interval '1 hour' THEN time - lag(time) OVER w END AS gap,
        row_number() OVER w AS rn
    FROM r
    WINDOW w AS (PARTITION BY connection_id ORDER BY time)
), g AS (
    SELECT l.*,
        least(lag(gap, 1) OVER w, lag(gap, 2) OVER w, lag(gap, 3) OVER w) AS report_interval,
        rn + count(*) FILTER (WHERE time - prev_time > interval '1 hour') OVER w AS seq0
    FROM l
    WINDOW w AS (PARTITION BY connection_id ORDER BY time)
), k AS (
    SELECT g.*,
        seq0 - coalesce(max(seq0) FILTER (WHERE time < $1) OVER (PARTITION BY connection_id), 0) AS seq,
        extract(epoch FROM gap)::double precision AS gap_seconds,
        extract(epoch FROM report_interval)::double precision AS interval_seconds
    FROM g
), last AS (
    UPDATE kohaku_issue_scope sc SET last_seq = z.seq, last_time = z.time
    FROM (SELECT connection_id, max(seq) AS seq, max(time) AS time FROM k GROUP BY connection_id) z
    WHERE sc.src = 'reports' AND sc.connection_id = z.connection_id
)
INSERT INTO kohaku_issue_flag (channel_id, session_id, connection_id, stats_id, kind, seq, start_time, time, critical, evidence)
SELECT k.channel_id, k.session_id, k.connection_id, NULL, 'missing_reports', k.seq, k.prev_time, k.time,
    coalesce(gap_seconds > t.missing_reports_critical * interval_seconds, false),
    jsonb_build_object('gap_seconds', round(gap_seconds::numeric, 3), 'report_interval_seconds', round(interval_seconds::numeric, 3))
FROM k
CROSS JOIN kohaku_issue_limits t
WHERE k.time >= $1 AND t.missing_reports_on AND interval_seconds > 0 AND gap_seconds > t.missing_reports_warning * interval_seconds;

-- Heads: the stored interval that holds p joins the run at p's place (seq 0), reaching back
-- to its start. (A missing_reports interval that starts at p holds the gap after p, not p.)
INSERT INTO kohaku_issue_flag (channel_id, session_id, connection_id, stats_id, kind, seq, start_time, time, critical, evidence)
SELECT sc.channel_id, sc.session_id, sc.connection_id, sc.stats_id, i.kind, 0, i.started_at, sc.p_time, i.severity = 'critical', i.evidence
FROM kohaku_issue_scope sc
JOIN kohaku_issue i ON i.connection_id = sc.connection_id AND i.stats_id IS NOT DISTINCT FROM sc.stats_id AND i.kind = ANY (sc.kinds)
WHERE sc.p_time IS NOT NULL AND i.ended_at >= sc.p_time
    AND (i.started_at < sc.p_time OR i.started_at = sc.p_time AND i.kind <> 'missing_reports');

-- Tails: the stored interval that holds q joins the run at q's place, reaching on to its end.
INSERT INTO kohaku_issue_flag (channel_id, session_id, connection_id, stats_id, kind, seq, start_time, time, critical, evidence)
SELECT sc.channel_id, sc.session_id, sc.connection_id, sc.stats_id, i.kind,
    sc.last_seq + 1 + (sc.q_time - sc.last_time > interval '1 hour')::int,
    CASE WHEN i.kind = 'missing_reports' THEN sc.last_time ELSE sc.q_time END,
    i.ended_at, i.severity = 'critical', i.evidence
FROM kohaku_issue_scope sc
JOIN kohaku_issue i ON i.connection_id = sc.connection_id AND i.stats_id IS NOT DISTINCT FROM sc.stats_id AND i.kind = ANY (sc.kinds)
WHERE sc.q_time IS NOT NULL AND sc.last_seq IS NOT NULL AND i.started_at <= sc.q_time AND i.ended_at >= sc.q_time
    AND (i.started_at < sc.q_time OR i.kind <> 'missing_reports');

-- The intervals: runs of consecutive sequence numbers.
CREATE TEMP TABLE kohaku_issue_new ON COMMIT DROP AS
WITH f AS (
    SELECT f.*, coalesce(stats_id, '') AS skey,
        seq - dense_rank() OVER (PARTITION BY connection_id, stats_id, kind ORDER BY seq) AS run
    FROM kohaku_issue_flag f
), e AS (
    SELECT connection_id, skey, kind, run, jsonb_object_agg(key, value) AS evidence
    FROM (
        SELECT f.connection_id, f.skey, f.kind, f.run, j.key,
            CASE WHEN bool_and(jsonb_typeof(j.value) = 'number')
                THEN to_jsonb(max(CASE WHEN jsonb_typeof(j.value) = 'number' THEN j.value::text::numeric END))
                ELSE to_jsonb(max(j.value #>> '{}')) END AS value
        FROM f CROSS JOIN LATERAL jsonb_each(f.evidence) j
        WHERE jsonb_typeof(j.value) <> 'null'
        GROUP BY f.connection_id, f.skey, f.kind, f.run, j.key
    ) v
    GROUP BY connection_id, skey, kind, run
)
SELECT min(f.channel_id) AS channel_id, min(f.session_id) AS session_id, f.connection_id, min(f.stats_id) AS stats_id, f.kind,
    CASE WHEN bool_or(f.critical) THEN 'critical' ELSE 'warning' END AS severity,
    min(f.start_time) AS started_at, max(f.time) AS ended_at,
    coalesce(min(e.evidence::text)::jsonb, '{}'::jsonb) AS evidence
FROM f
LEFT JOIN e ON e.connection_id = f.connection_id AND e.skey = f.skey AND e.kind = f.kind AND e.run = f.run
GROUP BY f.connection_id, f.skey, f.kind, f.run;

-- The DELETE below looks up each stored interval here: without an index and statistics the
-- planner took the table for a few rows and scanned it once per stored interval, the square
-- of their number (3,676 intervals: 13.5 million rows read).
CREATE INDEX ON kohaku_issue_new (connection_id, kind, started_at);
ANALYZE kohaku_issue_new;

-- Replace the stored intervals of the objects read, from the one holding p to the one
-- holding q, keeping those that came out the same.
DELETE FROM kohaku_issue i
USING kohaku_issue_scope sc
WHERE i.connection_id = sc.connection_id AND i.stats_id IS NOT DISTINCT FROM sc.stats_id AND i.kind = ANY (sc.kinds)
    AND i.ended_at >= coalesce(sc.p_time, $1)
    AND CASE WHEN sc.q_time IS NULL THEN i.started_at <= $2
        ELSE i.started_at < sc.q_time OR i.started_at = sc.q_time AND i.kind <> 'missing_reports' END
    AND NOT EXISTS (SELECT 1 FROM kohaku_issue_new n
        WHERE n.connection_id = i.connection_id AND n.stats_id IS NOT DISTINCT FROM i.stats_id AND n.kind = i.kind
            AND n.started_at = i.started_at AND n.ended_at = i.ended_at AND n.severity = i.severity AND n.evidence = i.evidence);

INSERT INTO kohaku_issue (channel_id, session_id, connection_id, stats_id, kind, severity, started_at, ended_at, evidence)
SELECT n.channel_id, n.session_id, n.connection_id, n.stats_id, n.kind, n.severity, n.started_at, n.ended_at, n.evidence
FROM kohaku_issue_new n
WHERE NOT EXISTS (SELECT 1 FROM kohaku_issue i
    WHERE i.connection_id = n.connection_id AND i.stats_id IS NOT DISTINCT FROM n.stats_id AND i.kind = n.kind
        AND i.started_at = n.started_at AND i.ended_at = n.ended_at AND i.severity = n.severity AND i.evidence = n.evidence)
ORDER BY n.connection_id, n.started_at, n.kind;
