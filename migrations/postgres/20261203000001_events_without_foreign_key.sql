-- Events are inserted by the hundred per commit; the foreign key made
-- PostgreSQL run a trigger per inserted event that looked up (and locked,
-- FOR KEY SHARE) the stream's row: about a fifth of PostgreSQL's CPU time
-- in a publish of batches of 100 (perf, W2). Only the writer inserts
-- events, for a stream whose row it has just locked FOR UPDATE within the
-- same transaction (which holds the log-head lock, so no other replica
-- deletes that stream meanwhile), and deleting a stream removes its events
-- first: the constraint guarded nothing the writer leaves undone.
ALTER TABLE events DROP CONSTRAINT events_stream_id_fkey;
