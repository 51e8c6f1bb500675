-- Scratch space for the health probe: after a write failed for want of
-- space, the probe commits a blob as large as the failed batch here (and
-- then empties it), so health turns SERVING only once a batch of that size
-- fits again. Holds at most one row, empty between probes.
CREATE TABLE write_probe (
    id     INTEGER PRIMARY KEY CHECK (id = 1),
    filler BLOB    NOT NULL
);
