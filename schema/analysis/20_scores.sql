-- 20_scores.sql: the quality scores of a period (issue 15, item 3), recomputed from the
-- stored stats rows. schema.Analyze runs it after 10_issues.sql, in the same transaction,
-- with $1 = since and $2 = until (timestamptz) and $3 = the connection ids to score (NULL
-- for all): every read of a stats or score table below is limited to them, and a score
-- belongs to one connection and is computed from its rows alone.
--
-- The period is cut into whole minutes: every minute whose start is in
-- [date_trunc('minute', $1), $2) is scored again from the reports of that minute (reports
-- before $2 only, so a run that ends inside a minute scores it from what it has, and the
-- next run over it rewrites it: a report at exactly $2 starts the next period's minute, so
-- consecutive periods give the rows of one long one). Then every connection with a scored
-- minute in the period gets its connection score again, over all its scored minutes. The
-- formulas are the functions of 0007_scores.sql, and schema/analysis/SCORES.md explains
-- them and the inputs chosen here.
--
-- What is read, so that a run costs what the period holds and not what the connections
-- did before it (the live analysis scores the last minutes every 30 s, in calls of hours):
--
-- * the reports of [date_trunc('minute', $1), $2), through the stats tables' time index;
-- * per rtp stats object of the period, its one report before the period (the one that
--   lag() would give), through the natural key index (connection_id, stats_id, time):
--   one backward index probe, however far back it is;
-- * for video, the frame size and rate of the four minutes before the period (the
--   reference is the stream's best over the minute and the four before it);
-- * for the connection scores, the stored stream-minutes of the connections scored: one
--   row per stream and minute, so this part alone grows with the length of a call (about
--   5 us per stream-minute; 0.1 s for 100 connections an hour old).
--
-- The per-report counts and rates are therefore computed here, in the temporary tables
-- kohaku_score_*_rates, and not read from the kohaku_*_rtp_rates views: those compute
-- lag() over each stats object's whole history before any filter on time. The temporary
-- tables compute exactly the views' figures for the reports of the period, by the views'
-- own rules (a count is the growth since the object's previous report, a missing report
-- only makes the interval longer, a counter that went down counts from zero, the first
-- report of an object has no counts): their expressions are the views', and
-- schema/scores_analysis_test.go checks that every column equals the view's over data with
-- counter resets, gaps and long histories. A change of a view's rule must be made here too.

-- 0. The per-report figures of the period (see above), one row per report whose time is in
-- [date_trunc('minute', $1), $2), with the columns of kohaku_inbound_rtp_rates that the
-- scores use, named as there.
CREATE TEMP TABLE kohaku_score_inbound_rates ON COMMIT DROP AS
WITH here AS MATERIALIZED (
    SELECT s.time, s.channel_id, s.session_id, s.connection_id, s.stats_id, s.kind,
        s.stats_timestamp, s.bytes_received, s.packets_received, s.packets_lost,
        s.frames_decoded, s.freeze_count, s.total_freezes_duration,
        s.concealed_samples, s.total_samples_received, s.jitter_buffer_delay, s.jitter_buffer_emitted_count,
        s.frames_per_second, s.frame_width, s.frame_height
    FROM rtc_inbound_rtp_stats s
    WHERE s.time >= date_trunc('minute', $1::timestamptz) AND s.time < $2::timestamptz
        AND (s.connection_id = ANY($3::text[]) OR $3::text[] IS NULL)
),
-- Per stats object of the period (the views' lag() partition: channel_id, session_id,
-- connection_id, stats_id), the last report before the period, found by one backward
-- probe of the natural key (connection_id, stats_id, time). It belongs to the same
-- channel and session but for a stats id reused across them (never seen from Sora):
-- then the partition's own last report is looked for.
last AS MATERIALIZED (
    SELECT o.channel_id AS object_channel_id, o.session_id AS object_session_id, b.*
    FROM (SELECT DISTINCT channel_id, session_id, connection_id, stats_id FROM here) o
    CROSS JOIN LATERAL (
        SELECT s.time, s.channel_id, s.session_id, s.connection_id, s.stats_id, s.kind,
            s.stats_timestamp, s.bytes_received, s.packets_received, s.packets_lost,
            s.frames_decoded, s.freeze_count, s.total_freezes_duration,
            s.concealed_samples, s.total_samples_received, s.jitter_buffer_delay, s.jitter_buffer_emitted_count,
            s.frames_per_second, s.frame_width, s.frame_height
        FROM rtc_inbound_rtp_stats s
        WHERE s.connection_id = o.connection_id AND s.stats_id = o.stats_id
            AND s.time < date_trunc('minute', $1::timestamptz)
        ORDER BY s.time DESC
        LIMIT 1
    ) b
),
reports AS (
    SELECT * FROM here
    UNION ALL
    SELECT l.time, l.channel_id, l.session_id, l.connection_id, l.stats_id, l.kind,
            l.stats_timestamp, l.bytes_received, l.packets_received, l.packets_lost,
            l.frames_decoded, l.freeze_count, l.total_freezes_duration,
            l.concealed_samples, l.total_samples_received, l.jitter_buffer_delay, l.jitter_buffer_emitted_count,
            l.frames_per_second, l.frame_width, l.frame_height
    FROM last l
    WHERE l.channel_id = l.object_channel_id AND l.session_id = l.object_session_id
    UNION ALL
    SELECT b.*
    FROM last l
    CROSS JOIN LATERAL (
        SELECT s.time, s.channel_id, s.session_id, s.connection_id, s.stats_id, s.kind,
            s.stats_timestamp, s.bytes_received, s.packets_received, s.packets_lost,
            s.frames_decoded, s.freeze_count, s.total_freezes_duration,
            s.concealed_samples, s.total_samples_received, s.jitter_buffer_delay, s.jitter_buffer_emitted_count,
            s.frames_per_second, s.frame_width, s.frame_height
        FROM rtc_inbound_rtp_stats s
        WHERE s.connection_id = l.connection_id AND s.stats_id = l.stats_id
            AND s.channel_id = l.object_channel_id AND s.session_id = l.object_session_id AND s.time < l.time
        ORDER BY s.time DESC
        LIMIT 1
    ) b
    WHERE NOT (l.channel_id = l.object_channel_id AND l.session_id = l.object_session_id)
),
w AS (
    SELECT r.*,
        lag(r.stats_timestamp) OVER w AS prev_stats_timestamp,
        lag(r.bytes_received) OVER w AS prev_bytes_received,
        lag(r.packets_received) OVER w AS prev_packets_received,
        lag(r.packets_lost) OVER w AS prev_packets_lost,
        lag(r.frames_decoded) OVER w AS prev_frames_decoded,
        lag(r.freeze_count) OVER w AS prev_freeze_count,
        lag(r.total_freezes_duration) OVER w AS prev_total_freezes_duration,
        lag(r.concealed_samples) OVER w AS prev_concealed_samples,
        lag(r.total_samples_received) OVER w AS prev_total_samples_received,
        lag(r.jitter_buffer_delay) OVER w AS prev_jitter_buffer_delay,
        lag(r.jitter_buffer_emitted_count) OVER w AS prev_jitter_buffer_emitted_count
    FROM reports r
    WINDOW w AS (PARTITION BY r.channel_id, r.session_id, r.connection_id, r.stats_id ORDER BY r.time)
),
r AS (
    SELECT w.*,
        coalesce(w.packets_received < w.prev_packets_received OR w.bytes_received < w.prev_bytes_received, false) AS reset
    FROM w
    WHERE w.time >= date_trunc('minute', $1::timestamptz)
),
-- The counts, as in kohaku_inbound_rtp_rates.
d AS (
    SELECT
        r.time, r.channel_id, r.session_id, r.connection_id, r.stats_id, r.kind,
        r.stats_timestamp - r.prev_stats_timestamp AS interval_ms,
        r.reset,
        CASE WHEN r.reset OR r.packets_received < r.prev_packets_received THEN r.packets_received
            ELSE r.packets_received - r.prev_packets_received END AS packets_received,
        CASE WHEN r.packets_lost IS NULL OR NOT r.reset AND r.prev_packets_lost IS NULL THEN NULL
            WHEN r.reset THEN greatest(r.packets_lost, 0)
            ELSE greatest(r.packets_lost - r.prev_packets_lost, 0) END AS packets_lost,
        CASE WHEN r.reset OR r.frames_decoded < r.prev_frames_decoded THEN r.frames_decoded
            ELSE r.frames_decoded - r.prev_frames_decoded END AS frames_decoded,
        CASE WHEN r.reset OR r.freeze_count < r.prev_freeze_count THEN r.freeze_count
            ELSE r.freeze_count - r.prev_freeze_count END AS freeze_count,
        CASE WHEN r.reset OR r.total_freezes_duration < r.prev_total_freezes_duration THEN r.total_freezes_duration
            ELSE r.total_freezes_duration - r.prev_total_freezes_duration END AS freeze_duration,
        CASE WHEN r.reset OR r.concealed_samples < r.prev_concealed_samples THEN r.concealed_samples
            ELSE r.concealed_samples - r.prev_concealed_samples END AS concealed_samples,
        CASE WHEN r.reset OR r.total_samples_received < r.prev_total_samples_received THEN r.total_samples_received
            ELSE r.total_samples_received - r.prev_total_samples_received END AS total_samples_received,
        CASE WHEN r.reset OR r.jitter_buffer_delay < r.prev_jitter_buffer_delay THEN r.jitter_buffer_delay
            ELSE r.jitter_buffer_delay - r.prev_jitter_buffer_delay END AS jitter_buffer_delay,
        CASE WHEN r.reset OR r.jitter_buffer_emitted_count < r.prev_jitter_buffer_emitted_count THEN r.jitter_buffer_emitted_count
            ELSE r.jitter_buffer_emitted_count - r.prev_jitter_buffer_emitted_count END AS jitter_buffer_emitted_count,
        r.frames_per_second AS reported_frames_per_second, r.frame_width, r.frame_height
    FROM r
)
SELECT
    d.time, d.channel_id, d.session_id, d.connection_id, d.stats_id, d.kind,
    d.interval_ms / 1000 AS interval_seconds,
    d.reset AS counter_reset,
    d.packets_received,
    d.packets_lost,
    coalesce(d.reported_frames_per_second,
        CASE WHEN d.interval_ms > 0 THEN 1000 * d.frames_decoded / d.interval_ms END) AS frames_per_second,
    d.frame_width,
    d.frame_height,
    d.freeze_count,
    d.freeze_duration,
    CASE WHEN d.concealed_samples > d.total_samples_received THEN 100
        ELSE 100 * d.concealed_samples::double precision / NULLIF(d.total_samples_received, 0) END AS concealment_percent,
    d.jitter_buffer_delay / NULLIF(d.jitter_buffer_emitted_count, 0) AS jitter_buffer_delay
FROM d;

-- The same for the sent streams: the columns of kohaku_outbound_rtp_rates that the scores
-- use.
CREATE TEMP TABLE kohaku_score_outbound_rates ON COMMIT DROP AS
WITH here AS MATERIALIZED (
    SELECT s.time, s.channel_id, s.session_id, s.connection_id, s.stats_id, s.kind, s.rid,
        s.stats_timestamp, s.bytes_sent, s.packets_sent, s.frames_encoded,
        s.frames_per_second, s.frame_width, s.frame_height, s.quality_limitation_durations
    FROM rtc_outbound_rtp_stats s
    WHERE s.time >= date_trunc('minute', $1::timestamptz) AND s.time < $2::timestamptz
        AND (s.connection_id = ANY($3::text[]) OR $3::text[] IS NULL)
),
-- Per stats object, its last report before the period (as for the inbound streams).
last AS MATERIALIZED (
    SELECT o.channel_id AS object_channel_id, o.session_id AS object_session_id, b.*
    FROM (SELECT DISTINCT channel_id, session_id, connection_id, stats_id FROM here) o
    CROSS JOIN LATERAL (
        SELECT s.time, s.channel_id, s.session_id, s.connection_id, s.stats_id, s.kind, s.rid,
            s.stats_timestamp, s.bytes_sent, s.packets_sent, s.frames_encoded,
            s.frames_per_second, s.frame_width, s.frame_height, s.quality_limitation_durations
        FROM rtc_outbound_rtp_stats s
        WHERE s.connection_id = o.connection_id AND s.stats_id = o.stats_id
            AND s.time < date_trunc('minute', $1::timestamptz)
        ORDER BY s.time DESC
        LIMIT 1
    ) b
),
reports AS (
    SELECT * FROM here
    UNION ALL
    SELECT l.time, l.channel_id, l.session_id, l.connection_id, l.stats_id, l.kind, l.rid,
            l.stats_timestamp, l.bytes_sent, l.packets_sent, l.frames_encoded,
            l.frames_per_second, l.frame_width, l.frame_height, l.quality_limitation_durations
    FROM last l
    WHERE l.channel_id = l.object_channel_id AND l.session_id = l.object_session_id
    UNION ALL
    SELECT b.*
    FROM last l
    CROSS JOIN LATERAL (
        SELECT s.time, s.channel_id, s.session_id, s.connection_id, s.stats_id, s.kind, s.rid,
            s.stats_timestamp, s.bytes_sent, s.packets_sent, s.frames_encoded,
            s.frames_per_second, s.frame_width, s.frame_height, s.quality_limitation_durations
        FROM rtc_outbound_rtp_stats s
        WHERE s.connection_id = l.connection_id AND s.stats_id = l.stats_id
            AND s.channel_id = l.object_channel_id AND s.session_id = l.object_session_id AND s.time < l.time
        ORDER BY s.time DESC
        LIMIT 1
    ) b
    WHERE NOT (l.channel_id = l.object_channel_id AND l.session_id = l.object_session_id)
),
-- A member that is not a number (a browser's bug) counts as missing, as in the view.
q AS (
    SELECT r.*,
        CASE WHEN jsonb_typeof(r.quality_limitation_durations -> 'cpu') = 'number'
            THEN (r.quality_limitation_durations ->> 'cpu')::double precision END AS cpu,
        CASE WHEN jsonb_typeof(r.quality_limitation_durations -> 'bandwidth') = 'number'
            THEN (r.quality_limitation_durations ->> 'bandwidth')::double precision END AS bandwidth
    FROM reports r
),
w AS (
    SELECT q.*,
        lag(q.stats_timestamp) OVER w AS prev_stats_timestamp,
        lag(q.bytes_sent) OVER w AS prev_bytes_sent,
        lag(q.packets_sent) OVER w AS prev_packets_sent,
        lag(q.frames_encoded) OVER w AS prev_frames_encoded,
        lag(q.cpu) OVER w AS prev_cpu,
        lag(q.bandwidth) OVER w AS prev_bandwidth
    FROM q
    WINDOW w AS (PARTITION BY q.channel_id, q.session_id, q.connection_id, q.stats_id ORDER BY q.time)
),
r AS (
    SELECT w.*,
        coalesce(w.packets_sent < w.prev_packets_sent OR w.bytes_sent < w.prev_bytes_sent, false) AS reset
    FROM w
    WHERE w.time >= date_trunc('minute', $1::timestamptz)
),
-- The counts, as in kohaku_outbound_rtp_rates.
d AS (
    SELECT
        r.time, r.channel_id, r.session_id, r.connection_id, r.stats_id, r.kind, r.rid,
        r.stats_timestamp - r.prev_stats_timestamp AS interval_ms,
        r.reset,
        CASE WHEN r.reset OR r.packets_sent < r.prev_packets_sent THEN r.packets_sent
            ELSE r.packets_sent - r.prev_packets_sent END AS packets_sent,
        CASE WHEN r.reset OR r.frames_encoded < r.prev_frames_encoded THEN r.frames_encoded
            ELSE r.frames_encoded - r.prev_frames_encoded END AS frames_encoded,
        CASE WHEN r.reset OR r.cpu < r.prev_cpu THEN r.cpu ELSE r.cpu - r.prev_cpu END AS limited_cpu,
        CASE WHEN r.reset OR r.bandwidth < r.prev_bandwidth THEN r.bandwidth ELSE r.bandwidth - r.prev_bandwidth END AS limited_bandwidth,
        r.frames_per_second AS reported_frames_per_second, r.frame_width, r.frame_height
    FROM r
)
SELECT
    d.time, d.channel_id, d.session_id, d.connection_id, d.stats_id, d.kind, d.rid,
    d.interval_ms / 1000 AS interval_seconds,
    d.reset AS counter_reset,
    d.packets_sent,
    coalesce(d.reported_frames_per_second,
        CASE WHEN d.interval_ms > 0 THEN 1000 * d.frames_encoded / d.interval_ms END) AS frames_per_second,
    d.frame_width,
    d.frame_height,
    -- Not least(): it ignores a NULL and would make an unknown share 1.
    CASE WHEN d.interval_ms <= 0 THEN NULL WHEN 1000 * d.limited_cpu > d.interval_ms THEN 1
        ELSE 1000 * d.limited_cpu / d.interval_ms END AS quality_limitation_cpu_share,
    CASE WHEN d.interval_ms <= 0 THEN NULL WHEN 1000 * d.limited_bandwidth > d.interval_ms THEN 1
        ELSE 1000 * d.limited_bandwidth / d.interval_ms END AS quality_limitation_bandwidth_share
FROM d;

-- The same for what the receiving ends report of the sent streams: the columns of
-- kohaku_remote_inbound_rtp_rates that the scores use. The packets sent between two
-- reports come from the matching outbound-rtp (localId) at both reports' times, looked up
-- by the natural key, as in the view.
CREATE TEMP TABLE kohaku_score_remote_inbound_rates ON COMMIT DROP AS
WITH here AS MATERIALIZED (
    SELECT s.time, s.channel_id, s.session_id, s.connection_id, s.stats_id, s.kind, s.local_id,
        s.stats_timestamp, s.packets_lost, s.total_round_trip_time, s.round_trip_time_measurements,
        s.round_trip_time, s.fraction_lost
    FROM rtc_remote_inbound_rtp_stats s
    WHERE s.time >= date_trunc('minute', $1::timestamptz) AND s.time < $2::timestamptz
        AND (s.connection_id = ANY($3::text[]) OR $3::text[] IS NULL)
),
-- Per stats object, its last report before the period (as for the inbound streams).
last AS MATERIALIZED (
    SELECT o.channel_id AS object_channel_id, o.session_id AS object_session_id, b.*
    FROM (SELECT DISTINCT channel_id, session_id, connection_id, stats_id FROM here) o
    CROSS JOIN LATERAL (
        SELECT s.time, s.channel_id, s.session_id, s.connection_id, s.stats_id, s.kind, s.local_id,
            s.stats_timestamp, s.packets_lost, s.total_round_trip_time, s.round_trip_time_measurements,
            s.round_trip_time, s.fraction_lost
        FROM rtc_remote_inbound_rtp_stats s
        WHERE s.connection_id = o.connection_id AND s.stats_id = o.stats_id
            AND s.time < date_trunc('minute', $1::timestamptz)
        ORDER BY s.time DESC
        LIMIT 1
    ) b
),
reports AS (
    SELECT * FROM here
    UNION ALL
    SELECT l.time, l.channel_id, l.session_id, l.connection_id, l.stats_id, l.kind, l.local_id,
            l.stats_timestamp, l.packets_lost, l.total_round_trip_time, l.round_trip_time_measurements,
            l.round_trip_time, l.fraction_lost
    FROM last l
    WHERE l.channel_id = l.object_channel_id AND l.session_id = l.object_session_id
    UNION ALL
    SELECT b.*
    FROM last l
    CROSS JOIN LATERAL (
        SELECT s.time, s.channel_id, s.session_id, s.connection_id, s.stats_id, s.kind, s.local_id,
            s.stats_timestamp, s.packets_lost, s.total_round_trip_time, s.round_trip_time_measurements,
            s.round_trip_time, s.fraction_lost
        FROM rtc_remote_inbound_rtp_stats s
        WHERE s.connection_id = l.connection_id AND s.stats_id = l.stats_id
            AND s.channel_id = l.object_channel_id AND s.session_id = l.object_session_id AND s.time < l.time
        ORDER BY s.time DESC
        LIMIT 1
    ) b
    WHERE NOT (l.channel_id = l.object_channel_id AND l.session_id = l.object_session_id)
),
w AS (
    SELECT r.*,
        lag(r.time) OVER w AS prev_time,
        lag(r.stats_timestamp) OVER w AS prev_stats_timestamp,
        lag(r.packets_lost) OVER w AS prev_packets_lost,
        lag(r.total_round_trip_time) OVER w AS prev_total_round_trip_time,
        lag(r.round_trip_time_measurements) OVER w AS prev_round_trip_time_measurements
    FROM reports r
    WINDOW w AS (PARTITION BY r.channel_id, r.session_id, r.connection_id, r.stats_id ORDER BY r.time)
),
r AS (
    SELECT w.*,
        coalesce(w.round_trip_time_measurements < w.prev_round_trip_time_measurements
            OR w.total_round_trip_time < w.prev_total_round_trip_time, false) AS reset
    FROM w
    WHERE w.time >= date_trunc('minute', $1::timestamptz)
),
-- The counts, as in kohaku_remote_inbound_rtp_rates.
d AS (
    SELECT
        r.time, r.channel_id, r.session_id, r.connection_id, r.stats_id, r.kind, r.local_id,
        r.stats_timestamp - r.prev_stats_timestamp AS interval_ms,
        r.reset,
        CASE WHEN r.packets_lost IS NULL OR NOT r.reset AND r.prev_packets_lost IS NULL THEN NULL
            WHEN r.reset THEN greatest(r.packets_lost, 0)
            ELSE greatest(r.packets_lost - r.prev_packets_lost, 0) END AS packets_lost,
        CASE WHEN r.reset OR r.total_round_trip_time < r.prev_total_round_trip_time THEN r.total_round_trip_time
            ELSE r.total_round_trip_time - r.prev_total_round_trip_time END AS total_round_trip_time,
        CASE WHEN r.reset OR r.round_trip_time_measurements < r.prev_round_trip_time_measurements THEN r.round_trip_time_measurements
            ELSE r.round_trip_time_measurements - r.prev_round_trip_time_measurements END AS round_trip_time_measurements,
        CASE WHEN o.packets_sent < coalesce(o0.packets_sent, p0.packets_sent) THEN o.packets_sent
            ELSE o.packets_sent - coalesce(o0.packets_sent, p0.packets_sent) END AS packets_sent,
        r.round_trip_time AS reported_round_trip_time, r.fraction_lost
    FROM r
    -- The outbound-rtp at the report's time, and at the previous report's time when that is
    -- in the period too: the time bounds (true of any match) keep the joins to the period's
    -- rows, whatever plan is chosen.
    LEFT JOIN rtc_outbound_rtp_stats o
        ON o.connection_id = r.connection_id AND o.stats_id = r.local_id AND o.time = r.time
        AND o.time >= date_trunc('minute', $1::timestamptz) AND o.time < $2::timestamptz
    LEFT JOIN rtc_outbound_rtp_stats o0
        ON o0.connection_id = r.connection_id AND o0.stats_id = r.local_id AND o0.time = r.prev_time
        AND o0.time >= date_trunc('minute', $1::timestamptz) AND o0.time < $2::timestamptz
    -- The previous report before the period: one probe of the natural key per stats object.
    LEFT JOIN LATERAL (
        SELECT x.packets_sent
        FROM rtc_outbound_rtp_stats x
        WHERE r.prev_time < date_trunc('minute', $1::timestamptz)
            AND x.connection_id = r.connection_id AND x.stats_id = r.local_id AND x.time = r.prev_time
        LIMIT 1
    ) p0 ON true
)
SELECT
    d.time, d.channel_id, d.session_id, d.connection_id, d.stats_id, d.kind, d.local_id,
    d.interval_ms / 1000 AS interval_seconds,
    d.reset AS counter_reset,
    coalesce(d.total_round_trip_time / NULLIF(d.round_trip_time_measurements, 0), d.reported_round_trip_time) AS round_trip_time,
    d.packets_lost,
    d.packets_sent,
    CASE WHEN d.packets_sent > 0 AND d.packets_lost IS NOT NULL
        THEN least(100, 100 * d.packets_lost::double precision / d.packets_sent)
        ELSE 100 * d.fraction_lost END AS loss_percent
FROM d;

-- The planner knows nothing of a new table: without its statistics it takes the few rows
-- of an empty one and joins them by nested loops.
ANALYZE kohaku_score_inbound_rates, kohaku_score_outbound_rates, kohaku_score_remote_inbound_rates;

-- 1. Forget the period's minutes: a minute that has no media any more has no score.
DELETE FROM kohaku_stream_score
WHERE bucket >= date_trunc('minute', $1::timestamptz) AND bucket < $2::timestamptz
    AND (connection_id = ANY($3::text[]) OR $3::text[] IS NULL);

-- 2. Score every stream and minute of the period.
INSERT INTO kohaku_stream_score (bucket, channel_id, session_id, connection_id, stats_id, kind, direction,
    score, mos, r_factor, reasons, inputs, score_version)
WITH period AS (
    SELECT date_trunc('minute', $1::timestamptz) AS since, $2::timestamptz AS until
),
-- The round trip time of each connection and minute, from its ICE candidate pairs: the
-- mean currentRoundTripTime of the nominated pair, or of any pair when none says it is.
-- Means of floating-point numbers are taken in time order here and below, so that they do
-- not depend on the order in which a plan reads the rows (see step 3).
pair_rtt AS (
    SELECT s.connection_id, date_trunc('minute', s.time) AS bucket,
        1000 * coalesce(avg(s.current_round_trip_time ORDER BY s.time, s.stats_id) FILTER (WHERE s.nominated),
            avg(s.current_round_trip_time ORDER BY s.time, s.stats_id)) AS rtt_ms
    FROM rtc_candidate_pair_stats s, period p
    WHERE s.time >= p.since AND s.time < p.until AND s.current_round_trip_time IS NOT NULL
        AND (s.connection_id = ANY($3::text[]) OR $3::text[] IS NULL)
    GROUP BY 1, 2
),
-- Received streams per minute. Rates are weighted by the seconds each report covers.
-- (This and the next two are MATERIALIZED so that the filters of "minutes" below are not
-- pushed into the aggregates, where the planner would take them for very selective and
-- join the minutes by nested loops.)
inbound AS MATERIALIZED (
    SELECT r.connection_id, r.stats_id, date_trunc('minute', r.time) AS bucket,
        min(r.channel_id) AS channel_id, min(r.session_id) AS session_id, min(r.kind) AS kind,
        sum(r.interval_seconds) AS interval_seconds,
        100 * sum(r.packets_lost)::double precision / NULLIF(sum(r.packets_lost) + sum(r.packets_received), 0) AS loss_percent,
        sum(r.concealment_percent * r.interval_seconds) / NULLIF(sum(r.interval_seconds) FILTER (WHERE r.concealment_percent IS NOT NULL), 0) AS concealment_percent,
        1000 * sum(r.jitter_buffer_delay * r.interval_seconds) / NULLIF(sum(r.interval_seconds) FILTER (WHERE r.jitter_buffer_delay IS NOT NULL), 0) AS jitter_buffer_ms,
        sum(r.frames_per_second * r.interval_seconds) / NULLIF(sum(r.interval_seconds) FILTER (WHERE r.frames_per_second IS NOT NULL), 0) AS frames_per_second,
        sum(r.frame_width * r.interval_seconds) / NULLIF(sum(r.interval_seconds) FILTER (WHERE r.frame_width > 0 AND r.frame_height > 0), 0) AS frame_width,
        sum(r.frame_height * r.interval_seconds) / NULLIF(sum(r.interval_seconds) FILTER (WHERE r.frame_width > 0 AND r.frame_height > 0), 0) AS frame_height,
        sum(r.freeze_count) AS freeze_count,
        sum(r.freeze_duration) AS freeze_seconds,
        sum(r.packets_received) AS packets
    FROM kohaku_score_inbound_rates r
    WHERE r.interval_seconds > 0
    GROUP BY 1, 2, 3
),
-- The sender's view of its streams, per minute: what the receiving end reported.
remote AS MATERIALIZED (
    SELECT r.connection_id, r.local_id, date_trunc('minute', r.time) AS bucket,
        1000 * avg(r.round_trip_time) AS rtt_ms,
        sum(r.loss_percent * r.interval_seconds) / NULLIF(sum(r.interval_seconds) FILTER (WHERE r.loss_percent IS NOT NULL), 0) AS loss_percent
    FROM kohaku_score_remote_inbound_rates r
    WHERE r.interval_seconds > 0
    GROUP BY 1, 2, 3
),
-- Sent streams per minute.
outbound AS MATERIALIZED (
    SELECT r.connection_id, r.stats_id, date_trunc('minute', r.time) AS bucket,
        min(r.channel_id) AS channel_id, min(r.session_id) AS session_id, min(r.kind) AS kind,
        min(r.rid) AS rid,
        sum(r.interval_seconds) AS interval_seconds,
        sum(r.frames_per_second * r.interval_seconds) / NULLIF(sum(r.interval_seconds) FILTER (WHERE r.frames_per_second IS NOT NULL), 0) AS frames_per_second,
        sum(r.frame_width * r.interval_seconds) / NULLIF(sum(r.interval_seconds) FILTER (WHERE r.frame_width > 0 AND r.frame_height > 0), 0) AS frame_width,
        sum(r.frame_height * r.interval_seconds) / NULLIF(sum(r.interval_seconds) FILTER (WHERE r.frame_width > 0 AND r.frame_height > 0), 0) AS frame_height,
        sum(r.quality_limitation_bandwidth_share * r.interval_seconds) / NULLIF(sum(r.interval_seconds) FILTER (WHERE r.quality_limitation_bandwidth_share IS NOT NULL), 0) AS bandwidth_share,
        sum(r.quality_limitation_cpu_share * r.interval_seconds) / NULLIF(sum(r.interval_seconds) FILTER (WHERE r.quality_limitation_cpu_share IS NOT NULL), 0) AS cpu_share,
        sum(r.packets_sent) AS packets
    FROM kohaku_score_outbound_rates r
    WHERE r.interval_seconds > 0
    GROUP BY 1, 2, 3
),
-- The video reference of each stream and minute: the largest frame (by pixels, with its
-- width and height) and the highest frame rate that the stream itself showed in that minute
-- and the four before it. Gauges, read from the stats tables directly, once per direction
-- (a filter on the direction would hide the row count from the planner, as above).
inbound_best AS (
    SELECT m.connection_id, m.stats_id, m.bucket,
        max(m.frame) OVER w AS frame,
        max(m.fps) OVER w AS fps
    FROM (
        SELECT s.connection_id, s.stats_id, date_trunc('minute', s.time) AS bucket,
            max(ARRAY[s.frame_width * s.frame_height, s.frame_width, s.frame_height]::double precision[])
                FILTER (WHERE s.frame_width > 0 AND s.frame_height > 0) AS frame,
            max(s.frames_per_second) AS fps
        FROM rtc_inbound_rtp_stats s, period p
        WHERE s.time >= p.since - interval '4 minutes' AND s.time < p.until AND s.kind = 'video'
            AND (s.connection_id = ANY($3::text[]) OR $3::text[] IS NULL)
        GROUP BY 1, 2, 3
    ) m
    WINDOW w AS (PARTITION BY m.connection_id, m.stats_id ORDER BY m.bucket
        RANGE BETWEEN interval '4 minutes' PRECEDING AND CURRENT ROW)
),
outbound_best AS (
    SELECT m.connection_id, m.stats_id, m.bucket,
        max(m.frame) OVER w AS frame,
        max(m.fps) OVER w AS fps
    FROM (
        SELECT s.connection_id, s.stats_id, date_trunc('minute', s.time) AS bucket,
            max(ARRAY[s.frame_width * s.frame_height, s.frame_width, s.frame_height]::double precision[])
                FILTER (WHERE s.frame_width > 0 AND s.frame_height > 0) AS frame,
            max(s.frames_per_second) AS fps
        FROM rtc_outbound_rtp_stats s, period p
        WHERE s.time >= p.since - interval '4 minutes' AND s.time < p.until AND s.kind = 'video'
            AND (s.connection_id = ANY($3::text[]) OR $3::text[] IS NULL)
        GROUP BY 1, 2, 3
    ) m
    WINDOW w AS (PARTITION BY m.connection_id, m.stats_id ORDER BY m.bucket
        RANGE BETWEEN interval '4 minutes' PRECEDING AND CURRENT ROW)
),
-- The capture of a sent video stream, per minute: its media-source (largest frame,
-- mean frame rate), found through the outbound-rtp's mediaSourceId.
source AS (
    SELECT o.connection_id, o.stats_id, date_trunc('minute', o.time) AS bucket,
        max(ARRAY[m.width * m.height, m.width, m.height]::double precision[])
            FILTER (WHERE m.width > 0 AND m.height > 0) AS frame,
        avg(m.frames_per_second ORDER BY o.time) AS fps
    FROM rtc_outbound_rtp_stats o
    CROSS JOIN period p
    JOIN rtc_media_source_stats m ON m.connection_id = o.connection_id AND m.stats_id = o.media_source_id
        AND m.time = o.time
    WHERE o.time >= p.since AND o.time < p.until AND o.kind = 'video'
        AND (o.connection_id = ANY($3::text[]) OR $3::text[] IS NULL)
    GROUP BY 1, 2, 3
),
-- Every stream-minute with media, with the figures its score is computed from.
minutes AS (
    SELECT i.bucket, i.channel_id, i.session_id, i.connection_id, i.stats_id, i.kind, 'inbound' AS direction,
        -- Received audio: this connection's round trip to Sora (candidate pair).
        pr.rtt_ms, CASE WHEN pr.rtt_ms IS NOT NULL THEN 'candidate-pair' END AS rtt_source,
        i.jitter_buffer_ms, i.loss_percent, i.concealment_percent,
        i.frames_per_second, rb.fps AS reference_fps,
        i.frame_width, i.frame_height, rb.frame[2] AS reference_width, rb.frame[3] AS reference_height,
        'recent-best' AS reference_source,
        i.freeze_count, i.freeze_seconds, i.interval_seconds,
        NULL::double precision AS bandwidth_share, NULL::double precision AS cpu_share
    FROM inbound i
    LEFT JOIN pair_rtt pr ON pr.connection_id = i.connection_id AND pr.bucket = i.bucket
    LEFT JOIN inbound_best rb ON rb.connection_id = i.connection_id AND rb.stats_id = i.stats_id
        AND rb.bucket = i.bucket
    WHERE i.packets > 0
    UNION ALL
    SELECT o.bucket, o.channel_id, o.session_id, o.connection_id, o.stats_id, o.kind, 'outbound',
        -- Sent audio: the receiving end's RTCP round trip, else the candidate pair's.
        coalesce(re.rtt_ms, pr.rtt_ms),
        CASE WHEN re.rtt_ms IS NOT NULL THEN 'remote-inbound-rtp' WHEN pr.rtt_ms IS NOT NULL THEN 'candidate-pair' END,
        NULL, re.loss_percent, NULL,
        o.frames_per_second,
        -- A simulcast layer is smaller than its source by design: it is compared with itself.
        CASE WHEN o.rid IS NULL AND so.fps > 0 THEN so.fps ELSE rb.fps END,
        o.frame_width, o.frame_height,
        CASE WHEN o.rid IS NULL AND so.frame IS NOT NULL THEN so.frame[2] ELSE rb.frame[2] END,
        CASE WHEN o.rid IS NULL AND so.frame IS NOT NULL THEN so.frame[3] ELSE rb.frame[3] END,
        CASE WHEN o.rid IS NULL AND so.frame IS NOT NULL THEN 'media-source' ELSE 'recent-best' END,
        NULL, NULL, o.interval_seconds,
        o.bandwidth_share, o.cpu_share
    FROM outbound o
    LEFT JOIN remote re ON re.connection_id = o.connection_id AND re.local_id = o.stats_id AND re.bucket = o.bucket
    LEFT JOIN pair_rtt pr ON pr.connection_id = o.connection_id AND pr.bucket = o.bucket
    LEFT JOIN outbound_best rb ON rb.connection_id = o.connection_id AND rb.stats_id = o.stats_id
        AND rb.bucket = o.bucket
    LEFT JOIN source so ON so.connection_id = o.connection_id AND so.stats_id = o.stats_id AND so.bucket = o.bucket
    WHERE o.packets > 0
)
SELECT m.bucket, m.channel_id, m.session_id, m.connection_id, m.stats_id, m.kind, m.direction,
    coalesce(a.mos, v.score), a.mos, a.r_factor, coalesce(a.reasons, v.reasons),
    jsonb_strip_nulls(CASE WHEN m.kind = 'audio' THEN jsonb_build_object(
            'rtt_ms', m.rtt_ms, 'rtt_source', m.rtt_source, 'jitter_buffer_ms', m.jitter_buffer_ms,
            'loss_percent', m.loss_percent, 'concealment_percent', m.concealment_percent,
            'interval_seconds', m.interval_seconds)
        ELSE jsonb_build_object(
            'frames_per_second', m.frames_per_second, 'reference_fps', m.reference_fps,
            'frame_width', m.frame_width, 'frame_height', m.frame_height,
            'reference_width', m.reference_width, 'reference_height', m.reference_height,
            'reference_source', m.reference_source,
            'freeze_count', m.freeze_count, 'freeze_seconds', m.freeze_seconds,
            'interval_seconds', m.interval_seconds,
            'bandwidth_limited_share', m.bandwidth_share, 'cpu_limited_share', m.cpu_share) END),
    1
FROM minutes m
LEFT JOIN LATERAL kohaku_audio_mos_v1(m.rtt_ms, m.jitter_buffer_ms, m.loss_percent, m.concealment_percent) a
    ON m.kind = 'audio'
LEFT JOIN LATERAL kohaku_video_score_v1(m.frames_per_second, m.reference_fps, m.frame_width, m.frame_height,
    m.reference_width, m.reference_height, m.freeze_count, m.freeze_seconds, m.interval_seconds,
    m.bandwidth_share, m.cpu_share) v
    ON m.kind = 'video'
WHERE m.kind IN ('audio', 'video');

-- 3. Score again every connection with a scored minute in the period, or whose score
-- covered the period (its minutes there may be gone), over all its minutes: the mean of
-- its audio stream-minutes, of its video stream-minutes, the worse of the two, and per kind
-- and reason the mean impact over that kind's stream-minutes.
-- The sums run in time order (ORDER BY in the aggregates): a floating-point sum depends on
-- the order of its terms, and the stored rows' physical order on the runs before, so
-- without it one run and several consecutive ones could differ in the last digit.
INSERT INTO kohaku_connection_score AS t (connection_id, channel_id, session_id, started_at, ended_at,
    audio_score, video_score, score, minutes, reasons, score_version, analyzed_at)
WITH touched AS (
    SELECT connection_id
    FROM kohaku_stream_score
    WHERE bucket >= date_trunc('minute', $1::timestamptz) AND bucket < $2::timestamptz
        AND (connection_id = ANY($3::text[]) OR $3::text[] IS NULL)
    UNION
    SELECT connection_id
    FROM kohaku_connection_score
    WHERE ended_at > date_trunc('minute', $1::timestamptz) AND started_at < $2::timestamptz
        AND (connection_id = ANY($3::text[]) OR $3::text[] IS NULL)
),
scored AS (
    SELECT s.connection_id, s.channel_id, s.session_id, s.bucket, s.stats_id, s.kind, s.score, s.reasons, s.score_version
    FROM kohaku_stream_score s JOIN touched USING (connection_id)
),
per_reason AS (
    SELECT r.connection_id, r.kind, e ->> 'reason' AS reason,
        sum((e ->> 'impact')::double precision ORDER BY r.bucket, r.stats_id) AS impact, count(*) AS minutes
    FROM scored r, jsonb_array_elements(r.reasons) e
    GROUP BY 1, 2, 3
),
per_kind AS (
    SELECT connection_id, kind, count(*) AS stream_minutes
    FROM scored GROUP BY 1, 2
),
reasons AS (
    SELECT p.connection_id,
        jsonb_agg(jsonb_build_object('kind', p.kind, 'reason', p.reason,
            'impact', round((p.impact / k.stream_minutes)::numeric, 3), 'minutes', p.minutes)
            ORDER BY p.impact / k.stream_minutes DESC, p.kind, p.reason) AS reasons
    FROM per_reason p JOIN per_kind k USING (connection_id, kind)
    GROUP BY 1
),
scores AS (
    SELECT r.connection_id, min(r.channel_id) AS channel_id, min(r.session_id) AS session_id,
        min(r.bucket) AS started_at, max(r.bucket) + interval '1 minute' AS ended_at,
        avg(r.score ORDER BY r.bucket, r.stats_id) FILTER (WHERE r.kind = 'audio') AS audio_score,
        avg(r.score ORDER BY r.bucket, r.stats_id) FILTER (WHERE r.kind = 'video') AS video_score,
        count(DISTINCT r.bucket) AS minutes,
        max(r.score_version) AS score_version
    FROM scored r
    GROUP BY 1
)
SELECT s.connection_id, s.channel_id, s.session_id, s.started_at, s.ended_at,
    s.audio_score, s.video_score, least(s.audio_score, s.video_score), s.minutes,
    coalesce(re.reasons, '[]'::jsonb), s.score_version, now()
FROM scores s
LEFT JOIN reasons re USING (connection_id)
ON CONFLICT (connection_id) DO UPDATE SET
    channel_id = EXCLUDED.channel_id, session_id = EXCLUDED.session_id,
    started_at = EXCLUDED.started_at, ended_at = EXCLUDED.ended_at,
    audio_score = EXCLUDED.audio_score, video_score = EXCLUDED.video_score, score = EXCLUDED.score,
    minutes = EXCLUDED.minutes, reasons = EXCLUDED.reasons, score_version = EXCLUDED.score_version,
    analyzed_at = EXCLUDED.analyzed_at;

-- 4. A connection whose scored minutes were all in the period and are gone has no score.
DELETE FROM kohaku_connection_score c
WHERE c.ended_at > date_trunc('minute', $1::timestamptz) AND c.started_at < $2::timestamptz
    AND (c.connection_id = ANY($3::text[]) OR $3::text[] IS NULL)
    AND NOT EXISTS (SELECT 1 FROM kohaku_stream_score s WHERE s.connection_id = c.connection_id);
