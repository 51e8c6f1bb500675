CREATE TABLE groups (
    id                 BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    stream_id          BIGINT  NOT NULL REFERENCES streams (id),
    name               TEXT    COLLATE "C" NOT NULL,
    ack_timeout_us     BIGINT  NOT NULL,
    max_deliveries     BIGINT  NOT NULL,
    dead_letter_stream TEXT    NOT NULL,
    cursor             BIGINT  NOT NULL,
    created_at         BIGINT  NOT NULL,
    UNIQUE (stream_id, name)
);

CREATE TABLE group_consumers (
    group_id     BIGINT NOT NULL REFERENCES groups (id),
    name         TEXT   COLLATE "C" NOT NULL,
    last_seen_at BIGINT NOT NULL,
    PRIMARY KEY (group_id, name)
);

CREATE TABLE group_pending (
    group_id       BIGINT NOT NULL REFERENCES groups (id),
    sequence       BIGINT NOT NULL,
    consumer       TEXT   NOT NULL,
    delivery_count BIGINT NOT NULL,
    delivered_at   BIGINT NOT NULL,
    deliverable_at BIGINT NOT NULL,
    PRIMARY KEY (group_id, sequence)
);
CREATE INDEX group_pending_due ON group_pending (group_id, deliverable_at);
CREATE INDEX group_pending_consumer ON group_pending (group_id, consumer, deliverable_at);

CREATE TABLE checkpoints (
    name         TEXT   COLLATE "C" NOT NULL,
    stream       TEXT   COLLATE "C" NOT NULL,
    sequence     BIGINT NOT NULL,
    position     BIGINT NOT NULL,
    committed_at BIGINT NOT NULL,
    PRIMARY KEY (name, stream)
);
CREATE INDEX checkpoints_stream ON checkpoints (stream);
