-- herald:no-transaction
-- History apart from the queue, statistics, step 2 of 3: the long part, outside a transaction so that it
-- blocks no reader or writer. VALIDATE CONSTRAINT scans under SHARE UPDATE EXCLUSIVE (reads and writes go
-- on); CREATE INDEX CONCURRENTLY builds without blocking writes. Safe to run again if a previous run was
-- interrupted (a half-built concurrent index is dropped and built anew).

ALTER TABLE message_stats VALIDATE CONSTRAINT message_stats_legacy_bound;
ALTER TABLE tenant_daily_stats VALIDATE CONSTRAINT tenant_daily_stats_legacy_bound;

-- The key of the partitioned message_stats (0035), with the slot; the legacy partition's copy of it (its
-- rows are all slot 0, so the old key makes it unique already).
DROP INDEX CONCURRENTLY IF EXISTS message_stats_key;
CREATE UNIQUE INDEX CONCURRENTLY message_stats_key ON message_stats (tenant_id, day, sender, tag, slot);
