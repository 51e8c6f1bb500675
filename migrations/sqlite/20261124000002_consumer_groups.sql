-- Consumer groups: a cursor over one stream plus a pending-entries list.
CREATE TABLE groups (
    id                 INTEGER PRIMARY KEY,
    stream_id          INTEGER NOT NULL REFERENCES streams (id),
    name               TEXT    NOT NULL,
    ack_timeout_us     INTEGER NOT NULL,
    max_deliveries     INTEGER NOT NULL,
    dead_letter_stream TEXT    NOT NULL,
    -- Highest sequence handed to any consumer.
    cursor             INTEGER NOT NULL,
    created_at         INTEGER NOT NULL,
    UNIQUE (stream_id, name)
);

-- Consumers seen by a group, for idle times and listings.
CREATE TABLE group_consumers (
    group_id     INTEGER NOT NULL REFERENCES groups (id),
    name         TEXT    NOT NULL,
    last_seen_at INTEGER NOT NULL,
    PRIMARY KEY (group_id, name)
) WITHOUT ROWID;

-- Delivered, not yet acked events (the PEL). `deliverable_at` is when the
-- entry may go out again: delivery + ack timeout, or a nack's delay.
CREATE TABLE group_pending (
    group_id       INTEGER NOT NULL REFERENCES groups (id),
    sequence       INTEGER NOT NULL,
    consumer       TEXT    NOT NULL,
    delivery_count INTEGER NOT NULL,
    delivered_at   INTEGER NOT NULL,
    deliverable_at INTEGER NOT NULL,
    PRIMARY KEY (group_id, sequence)
) WITHOUT ROWID;
CREATE INDEX group_pending_due ON group_pending (group_id, deliverable_at);
CREATE INDEX group_pending_consumer ON group_pending (group_id, consumer, deliverable_at);

-- Committed reader positions. `stream` is '' for global checkpoints.
CREATE TABLE checkpoints (
    name         TEXT    NOT NULL,
    stream       TEXT    NOT NULL,
    sequence     INTEGER NOT NULL,
    position     INTEGER NOT NULL,
    committed_at INTEGER NOT NULL,
    PRIMARY KEY (name, stream)
) WITHOUT ROWID;
-- DeleteStream removes the stream's checkpoints.
CREATE INDEX checkpoints_stream ON checkpoints (stream);
