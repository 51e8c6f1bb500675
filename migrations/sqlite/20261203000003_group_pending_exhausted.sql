-- Entries on or past their group's last allowed delivery, found without
-- reading every due entry: the dead-letter pass asks for
-- `delivery_count >= max_deliveries AND deliverable_at <= now` of each
-- group every second, and without this index it walked all due entries
-- (PostgreSQL chose a sequential scan of the whole table inside the write
-- transaction once one such entry existed).
CREATE INDEX group_pending_exhausted ON group_pending (group_id, delivery_count, deliverable_at);
