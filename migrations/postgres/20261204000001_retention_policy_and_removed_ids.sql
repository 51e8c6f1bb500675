-- A stream's retention policy (limits, interest, work_queue) and its own
-- dedup window (NULL: the server's; the server's unset: forever).
ALTER TABLE streams ADD COLUMN retention_policy TEXT NOT NULL DEFAULT 'limits'
    CHECK (retention_policy IN ('limits', 'interest', 'work_queue'));
ALTER TABLE streams ADD COLUMN dedup_window_us BIGINT;

-- The ids of removed events (trim, retention, take), so a producer's retry
-- after the removal still answers `duplicate` with the original sequence
-- and position. Only what that answer needs: no payload, no attributes.
CREATE TABLE removed_event_ids (
    stream_id   BIGINT NOT NULL,
    event_id    TEXT   NOT NULL,
    sequence    BIGINT NOT NULL,
    position    BIGINT NOT NULL,
    recorded_at BIGINT NOT NULL,
    PRIMARY KEY (stream_id, event_id)
);
-- Forgetting the ids past a dedup window, oldest first, without a scan.
CREATE INDEX removed_event_ids_recorded_at ON removed_event_ids (stream_id, recorded_at);
