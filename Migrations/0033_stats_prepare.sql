-- History apart from the queue (issue #17, item 5), statistics, step 1 of 3: prepare message_stats and
-- tenant_daily_stats to become the legacy partition of the partitioned tables that 0035 creates,
-- without a long lock.
--
-- The statistics are partitioned by their own day (not by an expiry day as messages and events are):
-- their retention is the installation's (HERALD_STATS_RETENTION_DAYS), so a day's rows all expire
-- together. Their day comes from the application (the UTC day of the event for message_stats, the day
-- in the quota time zone for tenant_daily_stats), so a row can name a day whose partition is not made
-- yet; 0035 gives both tables a DEFAULT partition for those, which the upkeep empties.
--
-- The rows already here become the partition of the days before a bound: the first partition day at
-- least two days after today and after every day already written (a week-wide partition starts on a
-- Monday). Until 0035 attaches them, writers go on writing today's days, which are all before the bound.
-- The constraint is NOT VALID (checked for new rows only; 0034 validates it without blocking writes).
--
-- message_stats gets a slot: the counters of one tenant, day, sender and tag are kept in up to eight rows,
-- one per slot, which each writing session picks by its process id (0035), and read as their sum. Every
-- accepting write adds to its tenant's row here, in the same transaction, so with one row per key the
-- writes of all processes for one tenant queued on that row (`ops/bench scale` (a), one tenant: 2.52
-- sessions waiting on row locks with four processes once the quota was leased). The rows from before
-- are slot 0 (a constant default: no rewrite).

-- Both tables locked first, in the order the writers take them (see 0035).
LOCK TABLE tenant_daily_stats, message_stats IN ACCESS EXCLUSIVE MODE;

ALTER TABLE message_stats ADD COLUMN slot smallint NOT NULL DEFAULT 0;

CREATE TABLE herald_stats_bound (until date NOT NULL);
INSERT INTO herald_stats_bound
SELECT herald_partition_start(greatest(herald_today() + 2,
                                       (SELECT max(day) + 1 FROM message_stats), (SELECT max(day) + 1 FROM tenant_daily_stats)), 7) + 7;

DO $$
DECLARE v_until date := (SELECT until FROM herald_stats_bound);
BEGIN
    EXECUTE format('ALTER TABLE message_stats ADD CONSTRAINT message_stats_legacy_bound CHECK (day < %L) NOT VALID', v_until);
    EXECUTE format('ALTER TABLE tenant_daily_stats ADD CONSTRAINT tenant_daily_stats_legacy_bound CHECK (day < %L) NOT VALID', v_until);
END $$;
