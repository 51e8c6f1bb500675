-- Streams and their append heads. Times are microseconds since the Unix
-- epoch, as on SQLite, so both backends order and compare alike.
CREATE TABLE streams (
    id               BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- Byte order, as on SQLite: names sort and page the same everywhere.
    name             TEXT   COLLATE "C" NOT NULL UNIQUE,
    created_at       BIGINT NOT NULL,
    last_sequence    BIGINT NOT NULL DEFAULT 0,
    last_position    BIGINT NOT NULL DEFAULT 0,
    event_count      BIGINT NOT NULL DEFAULT 0,
    last_appended_at BIGINT,
    max_events       BIGINT,
    max_age_us       BIGINT,
    ttl_us           BIGINT
);

-- The highest global position ever assigned. Every write transaction locks
-- this row first, so positions follow commit order across replicas.
CREATE TABLE log_head (
    id          INTEGER PRIMARY KEY CHECK (id = 1),
    position    BIGINT  NOT NULL,
    -- recorded_at of the last append by any replica: the floor of the next
    -- one's, so recording times never go backwards along positions.
    recorded_at BIGINT  NOT NULL DEFAULT 0
);
INSERT INTO log_head (id, position) VALUES (1, 0);

CREATE TABLE events (
    position    BIGINT PRIMARY KEY,
    stream_id   BIGINT NOT NULL REFERENCES streams (id),
    sequence    BIGINT NOT NULL,
    event_id    TEXT   NOT NULL,
    type        TEXT   NOT NULL,
    source      TEXT   NOT NULL,
    subject     TEXT,
    recorded_at BIGINT NOT NULL,
    payload     BYTEA  NOT NULL
);
CREATE UNIQUE INDEX events_stream_sequence ON events (stream_id, sequence);
CREATE UNIQUE INDEX events_stream_event_id ON events (stream_id, event_id);
CREATE INDEX events_stream_position ON events (stream_id, position);
CREATE INDEX events_recorded_at ON events (recorded_at);
