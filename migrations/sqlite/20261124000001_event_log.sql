-- Streams and their append heads. Times are microseconds since the Unix epoch.
CREATE TABLE streams (
    id               INTEGER PRIMARY KEY,
    name             TEXT    NOT NULL UNIQUE,
    created_at       INTEGER NOT NULL,
    last_sequence    INTEGER NOT NULL DEFAULT 0,
    last_position    INTEGER NOT NULL DEFAULT 0,
    event_count      INTEGER NOT NULL DEFAULT 0,
    last_appended_at INTEGER,
    max_events       INTEGER,
    max_age_us       INTEGER,
    ttl_us           INTEGER
);

-- The highest global position ever assigned. Kept apart from the events so
-- that positions are never reused, even after the newest events are removed.
CREATE TABLE log_head (
    id          INTEGER PRIMARY KEY CHECK (id = 1),
    position    INTEGER NOT NULL,
    -- recorded_at of the last append: the floor of the next one's.
    recorded_at INTEGER NOT NULL DEFAULT 0
);
INSERT INTO log_head (id, position) VALUES (1, 0);

-- One row per event: the columns reads filter and order by, and the whole
-- CloudEvent once, as its protobuf encoding.
CREATE TABLE events (
    position    INTEGER PRIMARY KEY,
    stream_id   INTEGER NOT NULL REFERENCES streams (id),
    sequence    INTEGER NOT NULL,
    event_id    TEXT    NOT NULL,
    type        TEXT    NOT NULL,
    source      TEXT    NOT NULL,
    subject     TEXT,
    recorded_at INTEGER NOT NULL,
    payload     BLOB    NOT NULL
);
-- Stream reads by sequence.
CREATE UNIQUE INDEX events_stream_sequence ON events (stream_id, sequence);
-- Idempotent publishing: one event id per stream.
CREATE UNIQUE INDEX events_stream_event_id ON events (stream_id, event_id);
-- Subscriptions to named streams, which walk positions.
CREATE INDEX events_stream_position ON events (stream_id, position);
-- Starting reads and subscriptions at a time.
CREATE INDEX events_recorded_at ON events (recorded_at);
