-- Checkpoints belong to the token that committed them (its name; '' with
-- auth off), so one tenant cannot read, list or move another's resume point.
-- Checkpoints of earlier versions belong to '' (the auth-off owner).
CREATE TABLE checkpoints_owned (
    owner        TEXT    NOT NULL,
    name         TEXT    NOT NULL,
    stream       TEXT    NOT NULL,
    sequence     INTEGER NOT NULL,
    position     INTEGER NOT NULL,
    committed_at INTEGER NOT NULL,
    PRIMARY KEY (owner, name, stream)
) WITHOUT ROWID;
INSERT INTO checkpoints_owned (owner, name, stream, sequence, position, committed_at)
    SELECT '', name, stream, sequence, position, committed_at FROM checkpoints;
DROP TABLE checkpoints;
ALTER TABLE checkpoints_owned RENAME TO checkpoints;
-- DeleteStream removes the stream's checkpoints, whoever owns them.
CREATE INDEX checkpoints_stream ON checkpoints (stream);
