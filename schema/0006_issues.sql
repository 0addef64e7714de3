-- Issues: intervals in which a connection had a known kind of trouble (issue 15), found by
-- the SQL in schema/analysis from the stored stats rows, and the thresholds they are
-- judged by. See schema.Analyze for how and when the intervals are (re)computed.

-- One row per interval of consecutive reports with the same issue on the same stream
-- (stats_id) or, for connection-wide kinds, the same connection (stats_id NULL).
CREATE TABLE IF NOT EXISTS kohaku_issue (
    id            bigserial   PRIMARY KEY,
    channel_id    text        NOT NULL,
    session_id    text        NOT NULL,
    connection_id text        NOT NULL,
    stats_id      text,
    kind          text        NOT NULL,
    severity      text        NOT NULL CHECK (severity IN ('warning', 'critical')),
    started_at    timestamptz NOT NULL,
    ended_at      timestamptz NOT NULL CHECK (ended_at >= started_at),
    evidence      jsonb       NOT NULL DEFAULT '{}'::jsonb,
    analyzed_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS kohaku_issue_connection_id_started_at_idx ON kohaku_issue (connection_id, started_at);
CREATE INDEX IF NOT EXISTS kohaku_issue_channel_id_started_at_idx ON kohaku_issue (channel_id, started_at);
CREATE INDEX IF NOT EXISTS kohaku_issue_session_id_idx ON kohaku_issue (session_id);
COMMENT ON TABLE kohaku_issue IS 'Issue intervals found by schema.Analyze (schema/analysis/10_issues.sql): started_at is the first report with the issue, ended_at the last; evidence holds the figures that triggered it.';

-- The limits the analysis judges by, one row per (kind, name). Operators may UPDATE value;
-- the next analysis run over a period rewrites the intervals that the change affects.
CREATE TABLE IF NOT EXISTS kohaku_issue_threshold (
    kind        text             NOT NULL,
    name        text             NOT NULL,
    value       double precision NOT NULL,
    unit        text             NOT NULL,
    description text             NOT NULL,
    PRIMARY KEY (kind, name)
);
COMMENT ON TABLE kohaku_issue_threshold IS 'Thresholds of the issue analysis; operators may UPDATE value (enabled = 0 turns a kind off).';

-- The defaults. Every kind has enabled (1 = detected, 0 = not); the other rows are the
-- figures that one report is compared with. A report is judged against the previous report
-- of the same stats object (or connection); "per report" means over that interval.
INSERT INTO kohaku_issue_threshold (kind, name, value, unit, description) VALUES
    ('video_freeze', 'enabled', 1, 'boolean', 'detect freezes of received video (inbound-rtp freezeCount, totalFreezesDuration)'),
    ('video_freeze', 'warning', 1, 'freezes', 'warning when at least this many freezes ended in one report interval'),
    ('video_freeze', 'critical', 2, 's', 'critical when the freezes of one report interval lasted at least this long in all (it is an issue then even if no freeze was counted)'),
    ('packet_loss', 'enabled', 1, 'boolean', 'detect loss of received packets (inbound-rtp packetsLost against packetsReceived)'),
    ('packet_loss', 'warning', 3, '%', 'warning when at least this share of the packets expected in one report interval was lost'),
    ('packet_loss', 'critical', 10, '%', 'critical from this share of lost packets'),
    ('packet_loss', 'min_packets', 10, 'packets', 'a report interval with fewer packets expected (received plus lost) is not judged'),
    ('remote_packet_loss', 'enabled', 1, 'boolean', 'detect loss of sent packets as the remote side reports it (remote-inbound-rtp fractionLost)'),
    ('remote_packet_loss', 'warning', 3, '%', 'warning when the remote side reports at least this share of our packets lost'),
    ('remote_packet_loss', 'critical', 10, '%', 'critical from this share'),
    ('high_rtt', 'enabled', 1, 'boolean', 'detect a high round-trip time of the selected ICE candidate pair (currentRoundTripTime)'),
    ('high_rtt', 'warning', 0.3, 's', 'warning from this round-trip time (150 ms each way, ITU-T G.114)'),
    ('high_rtt', 'critical', 0.5, 's', 'critical from this round-trip time'),
    ('high_jitter', 'enabled', 1, 'boolean', 'detect high interarrival jitter of received streams (inbound-rtp jitter)'),
    ('high_jitter', 'warning', 0.03, 's', 'warning from this jitter'),
    ('high_jitter', 'critical', 0.1, 's', 'critical from this jitter'),
    ('audio_concealment', 'enabled', 1, 'boolean', 'detect received audio that the decoder had to conceal (inbound-rtp concealedSamples against totalSamplesReceived)'),
    ('audio_concealment', 'warning', 3, '%', 'warning when at least this share of the samples of one report interval was concealed'),
    ('audio_concealment', 'critical', 10, '%', 'critical from this share'),
    ('quality_limited_cpu', 'enabled', 1, 'boolean', 'detect sent video limited by the CPU (outbound-rtp qualityLimitationDurations.cpu, or qualityLimitationReason without it)'),
    ('quality_limited_cpu', 'warning', 50, '%', 'warning when the encoder was limited by the CPU for at least this share of one report interval'),
    ('quality_limited_cpu', 'critical', 90, '%', 'critical from this share'),
    ('quality_limited_bandwidth', 'enabled', 1, 'boolean', 'detect sent video limited by bandwidth (outbound-rtp qualityLimitationDurations.bandwidth, or qualityLimitationReason without it)'),
    ('quality_limited_bandwidth', 'warning', 50, '%', 'warning when the encoder was limited by bandwidth for at least this share of one report interval'),
    ('quality_limited_bandwidth', 'critical', 90, '%', 'critical from this share'),
    ('media_stopped', 'enabled', 1, 'boolean', 'detect a stream that stopped carrying packets (inbound-rtp packetsReceived, or packetsSent of an outbound-rtp not marked inactive) after it had carried some'),
    ('media_stopped', 'warning', 0.5, 'packets/s', 'warning when a stream that had packets carries at most this many per second over one report interval'),
    ('media_stopped', 'critical', 0, 'packets/s', 'critical at or below this rate (0: not one packet)'),
    ('relayed_or_tcp', 'enabled', 1, 'boolean', 'detect media over a TURN relay or over TCP (the local candidate of the selected candidate pair); critical for TURN over TCP or TLS'),
    ('ice_dtls_not_connected', 'enabled', 1, 'boolean', 'detect a transport whose ICE state is not connected or completed, or whose DTLS state is not connected; critical when failed or closed'),
    ('candidate_pair_switched', 'enabled', 1, 'boolean', 'detect a change of the transport''s selected candidate pair since the previous report'),
    ('missing_reports', 'enabled', 1, 'boolean', 'detect gaps in a connection''s reports (its peer-connection stats); the reporting interval is the shortest of the three gaps before'),
    ('missing_reports', 'warning', 3, 'intervals', 'warning when a gap is longer than this many reporting intervals'),
    ('missing_reports', 'critical', 10, 'intervals', 'critical when a gap is longer than this many reporting intervals')
ON CONFLICT (kind, name) DO NOTHING;
