-- History apart from the queue (issue #17, item 5), step 1 of 3: prepare today's tables to become the
-- "legacy" partition of the partitioned tables that 0032 creates, without a long lock.
--
-- messages, events, webhook_deliveries and webhook_attempts will be partitioned by the day their rows expire (expires_on): a tenant's
-- retention decides the day, so dropping one partition drops exactly the rows whose retention is over,
-- whatever each tenant's setting. A message still in the queue has no expiry (NULL) and lives in the
-- queue partition; it gets its day when it reaches a final status. The rows already here become one
-- partition holding the days before 2000-01-02 (the sentinel 2000-01-01, given to them by a constant
-- default, which costs no rewrite); 0031 validates the constraint that proves it and 0032 attaches them.
--
-- Every statement here takes its lock for an instant: columns with a constant default or none, and
-- constraints NOT VALID (checked for new rows only; 0031 validates them without blocking writes).

ALTER TABLE messages ADD COLUMN expires_on date DEFAULT DATE '2000-01-01';
ALTER TABLE messages ADD CONSTRAINT messages_legacy_bound
    CHECK (expires_on IS NOT NULL AND expires_on < DATE '2000-01-02') NOT VALID;

ALTER TABLE events ADD COLUMN expires_on date DEFAULT DATE '2000-01-01';
ALTER TABLE events ADD CONSTRAINT events_legacy_bound
    CHECK (expires_on IS NOT NULL AND expires_on < DATE '2000-01-02') NOT VALID;

ALTER TABLE webhook_deliveries ADD COLUMN expires_on date DEFAULT DATE '2000-01-01';
ALTER TABLE webhook_deliveries ADD CONSTRAINT webhook_deliveries_legacy_bound
    CHECK (expires_on IS NOT NULL AND expires_on < DATE '2000-01-02') NOT VALID;
ALTER TABLE webhook_attempts ADD COLUMN expires_on date DEFAULT DATE '2000-01-01';
ALTER TABLE webhook_attempts ADD CONSTRAINT webhook_attempts_legacy_bound
    CHECK (expires_on IS NOT NULL AND expires_on < DATE '2000-01-02') NOT VALID;

-- A webhook delivery remembers its event's expiry day, so that the dispatcher's join to events reads one
-- partition instead of all of them. Deliveries written before this point refer to legacy events.
ALTER TABLE webhook_deliveries ADD COLUMN event_expires date NOT NULL DEFAULT DATE '2000-01-01';

-- Each tenant's retention: message records with their bodies, and events. Days after the last change.
ALTER TABLE tenants ADD COLUMN message_retention_days integer NOT NULL DEFAULT 30;
ALTER TABLE tenants ADD COLUMN event_retention_days integer NOT NULL DEFAULT 180;
ALTER TABLE tenants ADD CONSTRAINT tenants_retention_check
    CHECK (message_retention_days BETWEEN 1 AND 400 AND event_retention_days BETWEEN 1 AND 400) NOT VALID;
