-- Quality scores (issue 15): a score per stream and minute, and one per connection, with the
-- reasons that lowered each, written by schema/analysis/20_scores.sql. The formulas are in
-- schema/analysis/SCORES.md, which shows the hand computation of the golden cases that
-- schema/scores_test.go checks.
--
-- The formulas live in pure, IMMUTABLE functions whose names carry their version
-- (kohaku_audio_mos_v1, kohaku_video_score_v1), and every score row records the version
-- that made it (score_version). A changed formula is a new function with the next number
-- in a new migration, and the analysis moves to it: the old function stays, so an old
-- score can still be explained, and recomputed from the inputs it recorded.
--
-- Each function returns its one row as a table (RETURNS TABLE, not OUT parameters): a SQL
-- function that returns a set is inlined by the planner where it is called in FROM, as
-- 20_scores.sql calls it once per stream-minute, and then costs a few expressions instead
-- of an execution of its own (about four times less for the live analysis).

-- One row per stream (stats object) and minute with media: the score of what the
-- connection received (inbound) or sent (outbound) in that minute.
CREATE TABLE IF NOT EXISTS kohaku_stream_score (
    bucket        timestamptz      NOT NULL,
    channel_id    text             NOT NULL,
    session_id    text             NOT NULL,
    connection_id text             NOT NULL,
    stats_id      text             NOT NULL,
    kind          text             NOT NULL CHECK (kind IN ('audio', 'video')),
    direction     text             NOT NULL CHECK (direction IN ('inbound', 'outbound')),
    score         double precision NOT NULL CHECK (score BETWEEN 1 AND 5),
    mos           double precision,
    r_factor      double precision,
    reasons       jsonb            NOT NULL DEFAULT '[]'::jsonb,
    inputs        jsonb            NOT NULL DEFAULT '{}'::jsonb,
    score_version integer          NOT NULL,
    analyzed_at   timestamptz      NOT NULL DEFAULT now(),
    PRIMARY KEY (connection_id, stats_id, bucket)
);
-- The analysis deletes and rewrites a period's minutes; dashboards list a channel's minutes.
CREATE INDEX IF NOT EXISTS kohaku_stream_score_bucket_idx ON kohaku_stream_score (bucket);
CREATE INDEX IF NOT EXISTS kohaku_stream_score_channel_id_bucket_idx ON kohaku_stream_score (channel_id, bucket);
COMMENT ON TABLE kohaku_stream_score IS 'Quality score per stream (connection_id, stats_id) and minute, 1 (bad) to 5: audio is the ITU-T G.107 E-model MOS (at most 4.41 with the default planning values), video a 1-5 score (schema/analysis/SCORES.md). reasons lists what lowered it, inputs the figures it was computed from.';
COMMENT ON COLUMN kohaku_stream_score.bucket IS 'Start of the minute (UTC).';
COMMENT ON COLUMN kohaku_stream_score.kind IS 'audio or video.';
COMMENT ON COLUMN kohaku_stream_score.direction IS 'inbound: what the connection received (inbound-rtp); outbound: what it sent, as the receiving side reported it (outbound-rtp with remote-inbound-rtp).';
COMMENT ON COLUMN kohaku_stream_score.score IS 'The score, 1 to 5: the MOS for audio, the video score for video.';
COMMENT ON COLUMN kohaku_stream_score.mos IS 'Audio: MOS estimate (G.107 Annex B mapping of r_factor), 1 to 4.5. NULL for video.';
COMMENT ON COLUMN kohaku_stream_score.r_factor IS 'Audio: E-model transmission rating R, 0 to 93.2. NULL for video.';
COMMENT ON COLUMN kohaku_stream_score.reasons IS 'What lowered the score, worst first: a jsonb array of {reason, impact (score points), ...}; the impacts add up to the best possible score minus this one.';
COMMENT ON COLUMN kohaku_stream_score.inputs IS 'The per-minute figures given to the score function, so that the score can be explained and recomputed.';
COMMENT ON COLUMN kohaku_stream_score.score_version IS 'Version of the formulas: n means kohaku_audio_mos_vn and kohaku_video_score_vn.';

-- One row per connection: its stream scores summed up over the connection's whole life (every
-- minute scored so far, not only the period last analyzed).
CREATE TABLE IF NOT EXISTS kohaku_connection_score (
    connection_id text             PRIMARY KEY,
    channel_id    text             NOT NULL,
    session_id    text             NOT NULL,
    started_at    timestamptz      NOT NULL,
    ended_at      timestamptz      NOT NULL CHECK (ended_at >= started_at),
    audio_score   double precision CHECK (audio_score BETWEEN 1 AND 5),
    video_score   double precision CHECK (video_score BETWEEN 1 AND 5),
    score         double precision NOT NULL CHECK (score BETWEEN 1 AND 5),
    minutes       integer          NOT NULL,
    reasons       jsonb            NOT NULL DEFAULT '[]'::jsonb,
    score_version integer          NOT NULL,
    analyzed_at   timestamptz      NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS kohaku_connection_score_channel_id_started_at_idx ON kohaku_connection_score (channel_id, started_at);
CREATE INDEX IF NOT EXISTS kohaku_connection_score_session_id_idx ON kohaku_connection_score (session_id);
COMMENT ON TABLE kohaku_connection_score IS 'Quality score per connection over every minute scored in kohaku_stream_score: the mean of its audio and of its video stream-minutes, and the worse of the two (schema/analysis/SCORES.md).';
COMMENT ON COLUMN kohaku_connection_score.started_at IS 'Start of the first scored minute.';
COMMENT ON COLUMN kohaku_connection_score.ended_at IS 'End of the last scored minute.';
COMMENT ON COLUMN kohaku_connection_score.audio_score IS 'Mean score of the connection''s audio stream-minutes (both directions); NULL without audio.';
COMMENT ON COLUMN kohaku_connection_score.video_score IS 'Mean score of the connection''s video stream-minutes (both directions); NULL without video.';
COMMENT ON COLUMN kohaku_connection_score.score IS 'The worse of audio_score and video_score.';
COMMENT ON COLUMN kohaku_connection_score.minutes IS 'Number of distinct minutes with a stream score.';
COMMENT ON COLUMN kohaku_connection_score.reasons IS 'jsonb array of {kind, reason, impact, minutes}: the mean impact of each reason over the kind''s stream-minutes (so a kind''s impacts add up to its best score minus its score) and the number of stream-minutes it lowered, worst first.';
COMMENT ON COLUMN kohaku_connection_score.score_version IS 'The highest score_version among the stream scores summed up.';

-- kohaku_audio_mos_v1 estimates the listening quality of one audio stream from the ITU-T
-- G.107 E-model with its default planning values (Ro - Is = 93.2):
--
--   Ta      = rtt_ms / 2 + jitter_buffer_ms                      one-way delay, ms
--   Idd     = 0 for Ta <= 100, else 25 * ((1 + X^6)^(1/6) - 3 * (1 + (X/3)^6)^(1/6) + 2),
--             X = log2(Ta / 100)                                (G.107 3.4, delay impairment)
--   Ie,eff  = Ie + (95 - Ie) * Ppl / (Ppl / BurstR + Bpl)       (G.107 3.5)
--             Ie = 0, Bpl = 25.1, BurstR = 1: Opus taken as G.711 with packet loss
--             concealment (ITU-T G.113 Appendix I), as ITU-T publishes no Opus values
--   Ppl     = greatest(loss_percent, concealment_percent)       the share of audio that was
--             lost, or replaced by concealment (which also covers late packets)
--   R       = 93.2 - Idd - Ie,eff
--   MOS     = 1 + 0.035 R + R (R - 60) (100 - R) 7e-6, within [1, 4.5]  (G.107 Annex B)
--
-- NULL inputs count as unimpaired. reasons lists delay (Idd), packet-loss (Ie,eff of the
-- loss alone) and concealment (what concealment adds beyond the loss), each with its share of
-- the MOS drop from 4.41 (MOS at R = 93.2) in proportion to its R impairment (r_impact), so
-- the impacts add up to 4.41 - mos; value is the figure that caused it.
CREATE OR REPLACE FUNCTION kohaku_audio_mos_v1(
    rtt_ms double precision,
    jitter_buffer_ms double precision,
    loss_percent double precision,
    concealment_percent double precision)
RETURNS TABLE (mos double precision, r_factor double precision, reasons jsonb)
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $fn$
WITH input AS (
    SELECT
        greatest(coalesce($1, 0), 0) / 2 + greatest(coalesce($2, 0), 0) AS ta,
        least(greatest(coalesce($3, 0), 0), 100) AS loss,
        least(greatest(coalesce($4, 0), 0), 100) AS concealment
), impairment AS (
    SELECT
        i.ta, i.loss, i.concealment,
        CASE WHEN i.ta <= 100 THEN 0::double precision
            ELSE 25 * (power(1 + power(ln(i.ta / 100) / ln(2), 6), 1.0 / 6)
                - 3 * power(1 + power(ln(i.ta / 100) / ln(2) / 3, 6), 1.0 / 6) + 2) END AS idd,
        -- Ie,eff with Ie = 0, Bpl = 25.1 and BurstR = 1.
        95 * i.loss / (i.loss + 25.1) AS ie_loss,
        95 * greatest(i.loss, i.concealment) / (greatest(i.loss, i.concealment) + 25.1) AS ie_eff
    FROM input i
), rating AS (
    SELECT m.*, 93.2 - m.idd - m.ie_eff AS r
    FROM impairment m
), score AS (
    SELECT t.*,
        CASE WHEN t.r <= 0 THEN 1::double precision
            ELSE least(greatest(1 + 0.035 * t.r + t.r * (t.r - 60) * (100 - t.r) * 7e-6, 1), 4.5) END AS mos,
        -- The MOS of R = 93.2, the best this model gives: 4.4093...
        1 + 0.035 * 93.2 + 93.2 * (93.2 - 60) * (100 - 93.2) * 7e-6 AS best
    FROM rating t
)
SELECT
    s.mos,
    greatest(s.r, 0),
    coalesce((
        SELECT jsonb_agg(jsonb_build_object('reason', x.reason, 'impact', x.impact, 'r_impact', x.r_impact, 'value', x.value)
            ORDER BY x.impact DESC, x.reason)
        FROM (
            SELECT v.reason,
                round(((s.best - s.mos) * v.r_impact / (s.idd + s.ie_eff))::numeric, 3) AS impact,
                round(v.r_impact::numeric, 2) AS r_impact,
                round(v.value::numeric, 2) AS value
            FROM (VALUES
                ('delay', s.idd, s.ta),
                ('packet-loss', s.ie_loss, s.loss),
                ('concealment', s.ie_eff - s.ie_loss, s.concealment)
            ) AS v (reason, r_impact, value)
            WHERE v.r_impact > 0
        ) x
        WHERE x.impact > 0
    ), '[]'::jsonb)
FROM score s
$fn$;
COMMENT ON FUNCTION kohaku_audio_mos_v1(double precision, double precision, double precision, double precision) IS 'Audio MOS, score version 1: ITU-T G.107 E-model from round trip time and jitter-buffer delay (ms), loss and concealment (percent). See schema/analysis/SCORES.md.';

-- kohaku_video_score_v1 scores one video stream's minute from 1 to 5: 5 less the impacts
-- below, at least 1 (when they add up to more than 4 each is scaled down so that they add up
-- to 4):
--
--   freeze          8 * frozen share of the interval + 0.2 per freeze per minute, at most 3
--   low-frame-rate  log2(0.9 * reference_fps / playing_fps), between 0 and 2, where
--                   playing_fps = fps / (1 - frozen share): frames per second while not
--                   frozen, so that a freeze is not counted twice (2 when no frame came)
--   low-resolution  0.75 * log2(sqrt(reference pixels / pixels)), between 0 and 2: 0.75 for
--                   each halving of width and height
--   quality-limited-bandwidth, quality-limited-cpu
--                   0.5 * share of the interval that the encoder was limited by it
--
-- NULL inputs (and a NULL or non-positive reference) count as unimpaired; interval_seconds
-- defaults to 60. Impacts below 0.0005 are not listed.
CREATE OR REPLACE FUNCTION kohaku_video_score_v1(
    frames_per_second double precision,
    reference_fps double precision,
    frame_width double precision,
    frame_height double precision,
    reference_width double precision,
    reference_height double precision,
    freeze_count double precision,
    freeze_seconds double precision,
    interval_seconds double precision,
    bandwidth_limited_share double precision,
    cpu_limited_share double precision)
RETURNS TABLE (score double precision, reasons jsonb)
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $fn$
WITH input AS (
    SELECT
        $1 AS fps, $2 AS ref_fps,
        CASE WHEN $3 > 0 AND $4 > 0 THEN $3 * $4 END AS pixels,
        CASE WHEN $5 > 0 AND $6 > 0 THEN $5 * $6 END AS ref_pixels,
        greatest(coalesce($7, 0), 0) AS freezes,
        greatest(coalesce($8, 0), 0) AS frozen,
        CASE WHEN $9 > 0 THEN $9 ELSE 60 END AS span,
        least(greatest(coalesce($10, 0), 0), 1) AS bandwidth,
        least(greatest(coalesce($11, 0), 0), 1) AS cpu
), share AS (
    SELECT i.*, least(i.frozen / i.span, 1) AS frozen_share
    FROM input i
), impact AS (
    SELECT
        s.*,
        least(8 * s.frozen_share + 0.2 * s.freezes * 60 / s.span, 3) AS freeze_impact,
        CASE WHEN s.fps IS NULL OR NOT s.ref_fps > 0 OR s.frozen_share >= 1 THEN 0
            WHEN s.fps <= 0 THEN 2
            ELSE least(greatest(ln(0.9 * s.ref_fps * (1 - s.frozen_share) / s.fps) / ln(2), 0), 2) END AS fps_impact,
        CASE WHEN s.pixels IS NULL OR s.ref_pixels IS NULL THEN 0
            ELSE least(greatest(0.75 * ln(sqrt(s.ref_pixels / s.pixels)) / ln(2), 0), 2) END AS resolution_impact,
        0.5 * s.bandwidth AS bandwidth_impact,
        0.5 * s.cpu AS cpu_impact
    FROM share s
), total AS (
    SELECT m.*,
        m.freeze_impact + m.fps_impact + m.resolution_impact + m.bandwidth_impact + m.cpu_impact AS sum_impact
    FROM impact m
), scaled AS (
    -- Impacts adding up to more than 4 are scaled down to add up to 4: the score stops at 1.
    SELECT t.*, CASE WHEN t.sum_impact > 4 THEN 4 / t.sum_impact ELSE 1 END AS k
    FROM total t
)
SELECT
    5 - c.sum_impact * c.k,
    coalesce((
        SELECT jsonb_agg(jsonb_build_object('reason', x.reason, 'impact', x.impact) || x.detail
            ORDER BY x.impact DESC, x.reason)
        FROM (
            SELECT v.reason, round((v.impact * c.k)::numeric, 3) AS impact, v.detail
            FROM (VALUES
                ('freeze', c.freeze_impact,
                    jsonb_build_object('freezes', c.freezes, 'frozen_seconds', round(c.frozen::numeric, 2))),
                ('low-frame-rate', c.fps_impact,
                    jsonb_build_object('frames_per_second', round(c.fps::numeric, 2), 'reference_fps', round(c.ref_fps::numeric, 2))),
                ('low-resolution', c.resolution_impact,
                    jsonb_build_object('pixels', c.pixels, 'reference_pixels', c.ref_pixels)),
                ('quality-limited-bandwidth', c.bandwidth_impact,
                    jsonb_build_object('share', round(c.bandwidth::numeric, 3))),
                ('quality-limited-cpu', c.cpu_impact,
                    jsonb_build_object('share', round(c.cpu::numeric, 3)))
            ) AS v (reason, impact, detail)
        ) x
        WHERE x.impact > 0
    ), '[]'::jsonb)
FROM scaled c
$fn$;
COMMENT ON FUNCTION kohaku_video_score_v1(double precision, double precision, double precision, double precision, double precision, double precision, double precision, double precision, double precision, double precision, double precision) IS 'Video score, score version 1, 1 to 5, from frame rate, freezes, resolution against a reference and the encoder''s quality limitation. See schema/analysis/SCORES.md.';
