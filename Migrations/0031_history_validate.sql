-- herald:no-transaction
-- History apart from the queue, step 2 of 3: the long part, run outside a transaction so that it blocks
-- no reader or writer. VALIDATE CONSTRAINT scans the table under SHARE UPDATE EXCLUSIVE (reads and writes
-- go on); CREATE INDEX CONCURRENTLY builds without blocking writes. Each statement is safe to run again
-- if a previous run was interrupted (a half-built concurrent index is dropped and built anew).

ALTER TABLE messages VALIDATE CONSTRAINT messages_legacy_bound;
ALTER TABLE events VALIDATE CONSTRAINT events_legacy_bound;
ALTER TABLE tenants VALIDATE CONSTRAINT tenants_retention_check;

-- The partitioned tables cannot have a unique index on id alone (a unique index must contain the
-- partition key), so they index id plainly; these are the legacy partitions' copies of that index.
DROP INDEX CONCURRENTLY IF EXISTS messages_id;
CREATE INDEX CONCURRENTLY messages_id ON messages (id);
DROP INDEX CONCURRENTLY IF EXISTS events_id;
CREATE INDEX CONCURRENTLY events_id ON events (id);

-- What 0032 moves into the queue partition, found without a scan (paused messages have no other index).
DROP INDEX CONCURRENTLY IF EXISTS messages_in_queue;
CREATE INDEX CONCURRENTLY messages_in_queue ON messages (id) WHERE status IN ('queued', 'deferred', 'sending', 'paused');
