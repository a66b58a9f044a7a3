-- herald:no-transaction
-- History apart from the queue, step 2 of 3: the long part, run outside a transaction so that it blocks
-- no reader or writer. VALIDATE CONSTRAINT scans the table under SHARE UPDATE EXCLUSIVE (reads and writes
-- go on); CREATE INDEX CONCURRENTLY builds without blocking writes. Each statement is safe to run again
-- if a previous run was interrupted (a half-built concurrent index is dropped and built anew).

ALTER TABLE messages VALIDATE CONSTRAINT messages_legacy_bound;
ALTER TABLE events VALIDATE CONSTRAINT events_legacy_bound;
ALTER TABLE webhook_deliveries VALIDATE CONSTRAINT webhook_deliveries_legacy_bound;
ALTER TABLE webhook_attempts VALIDATE CONSTRAINT webhook_attempts_legacy_bound;
ALTER TABLE tenants VALIDATE CONSTRAINT tenants_retention_check;

-- The partitioned tables cannot have a unique index on id alone (a unique index must contain the
-- partition key), so they index id plainly; these are the legacy partitions' copies of that index.
DROP INDEX CONCURRENTLY IF EXISTS messages_id;
CREATE INDEX CONCURRENTLY messages_id ON messages (id);
DROP INDEX CONCURRENTLY IF EXISTS events_id;
CREATE INDEX CONCURRENTLY events_id ON events (id);
DROP INDEX CONCURRENTLY IF EXISTS webhook_deliveries_id;
CREATE INDEX CONCURRENTLY webhook_deliveries_id ON webhook_deliveries (id);
-- The same for the unique (endpoint_id, event_id), which served the delivery log and stays as a plain index.
DROP INDEX CONCURRENTLY IF EXISTS webhook_deliveries_endpoint_event;
CREATE INDEX CONCURRENTLY webhook_deliveries_endpoint_event ON webhook_deliveries (endpoint_id, event_id);

-- What the upkeep moves out of messages_legacy into the queue partition after 0032, found without a scan
-- (paused messages have no other index).
DROP INDEX CONCURRENTLY IF EXISTS messages_in_queue;
CREATE INDEX CONCURRENTLY messages_in_queue ON messages (id) WHERE status IN ('queued', 'deferred', 'sending', 'paused');
