-- Pending entries are written and removed by the hundred per commit; the
-- foreign key made PostgreSQL check (and lock, FOR KEY SHARE) the group's
-- row once per inserted entry: about 40 % of the cost of inserting them.
-- Only the writer inserts entries, for a group it has just read within
-- the same transaction (which holds the log-head lock, so no other replica
-- deletes that group meanwhile), and deleting a group or stream removes
-- its entries first: the constraint guarded nothing the writer leaves
-- undone.
ALTER TABLE group_pending DROP CONSTRAINT group_pending_group_id_fkey;
