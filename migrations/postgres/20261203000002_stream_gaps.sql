-- Sequences missing inside a stream's retained range: between its oldest
-- retained event and its last sequence, the sequences whose events were
-- removed from the middle or the top (Take of the newest events). Removals
-- from the front (trims, retention, Take of the oldest) leave no gap. With
-- them a group's lag (retained events past its cursor) is
--   last_sequence - max(cursor, oldest - 1) - (gap sequences above that),
-- read in a few index probes however long the lag is.
CREATE TABLE stream_gaps (
    stream_id      BIGINT NOT NULL,
    first_sequence BIGINT NOT NULL,
    last_sequence  BIGINT NOT NULL,
    PRIMARY KEY (stream_id, first_sequence)
);

-- The gaps of the events stored so far (one pass over the events).
INSERT INTO stream_gaps (stream_id, first_sequence, last_sequence)
SELECT stream_id, previous + 1, sequence - 1
FROM (
    SELECT stream_id, sequence,
           LAG(sequence) OVER (PARTITION BY stream_id ORDER BY sequence) AS previous
    FROM events
) AS ordered
WHERE previous IS NOT NULL AND sequence > previous + 1;

INSERT INTO stream_gaps (stream_id, first_sequence, last_sequence)
SELECT s.id, newest.sequence + 1, s.last_sequence
FROM streams s
JOIN (SELECT stream_id, MAX(sequence) AS sequence FROM events GROUP BY stream_id) AS newest
  ON newest.stream_id = s.id
WHERE s.last_sequence > newest.sequence;
