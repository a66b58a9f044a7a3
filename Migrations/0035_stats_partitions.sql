-- History apart from the queue (issue #17, item 5), statistics, step 3 of 3: message_stats and
-- tenant_daily_stats become tables partitioned by day, seven days a partition, in one short transaction.
--
-- message_stats          PARTITION BY RANGE (day)
--   message_stats_legacy   the rows from before this migration: the days before the bound of 0033
--                          (herald_partitioned.legacy_since), two to nine days after the migration;
--                          writes for the days until then still go here. Dropped whole once the
--                          retention has passed since the bound.
--   message_stats_pYYYYMMDD  the seven days from YYYY-MM-DD; dropped whole once its last day is older
--                          than HERALD_STATS_RETENTION_DAYS (herald_partitioned.fixed_days, default 400).
--   message_stats_other    DEFAULT: a day no partition holds yet (an application clock ahead of or behind
--                          the database's). The upkeep makes the partition and moves such rows into it,
--                          or deletes them once their day is past the retention.
-- tenant_daily_stats     the same, with tenant_daily_stats_legacy, _pYYYYMMDD and _other.
--
-- Every statement takes its locks for catalog changes only: the bound validated by 0034 proves the legacy
-- partition's range (no scan), the indexes are found on it (not built), and the new partitions are empty.

SET LOCAL lock_timeout = '10s';

-- The locks this migration needs, taken first and in the order the writers take them: a delivery record
-- locks tenant_daily_stats when it is planned, then reads tenants, then its events trigger writes
-- message_stats; an accepting write reads tenants, then writes message_stats. (Attaching the legacy tables,
-- whose foreign keys match the parents', drops their own triggers on tenants, which takes tenants' ACCESS
-- EXCLUSIVE lock.) Taken as the statements came, a writer holding tenants and waiting for message_stats
-- deadlocked with this migration (`ops/bench history`: a 1 s stall and a retry; without the retry, the
-- migration failed). Writers wait for this transaction: milliseconds.
LOCK TABLE tenant_daily_stats, tenants, message_stats IN ACCESS EXCLUSIVE MODE;

ALTER TABLE herald_partitioned ADD COLUMN key_column text NOT NULL DEFAULT 'expires_on' CHECK (key_column IN ('expires_on', 'day'));
INSERT INTO herald_partitioned (parent, width_days, retention, fixed_days, legacy_since, key_column)
SELECT t, 7, 'fixed', 400, b.until, 'day' FROM herald_stats_bound b, unnest(ARRAY['message_stats', 'tenant_daily_stats']) t;

DO $$
DECLARE
    v_until date := (SELECT until FROM herald_stats_bound);
    t text;
BEGIN
    ALTER TABLE message_stats RENAME TO message_stats_legacy;
    ALTER INDEX message_stats_pkey RENAME TO message_stats_legacy_pkey;
    ALTER INDEX message_stats_key RENAME TO message_stats_legacy_key;
    -- The key without the slot goes: the days until the bound are still written here, several rows a key.
    ALTER TABLE message_stats_legacy DROP CONSTRAINT message_stats_legacy_pkey;
    CREATE TABLE message_stats (LIKE message_stats_legacy INCLUDING DEFAULTS INCLUDING CONSTRAINTS) PARTITION BY RANGE (day);
    ALTER TABLE message_stats DROP CONSTRAINT message_stats_legacy_bound;
    ALTER TABLE message_stats ADD CONSTRAINT message_stats_tenant_id_fkey FOREIGN KEY (tenant_id) REFERENCES tenants(id) ON DELETE CASCADE;
    EXECUTE format('ALTER TABLE message_stats ATTACH PARTITION message_stats_legacy FOR VALUES FROM (MINVALUE) TO (%L)', v_until);
    CREATE TABLE message_stats_other (LIKE message_stats INCLUDING DEFAULTS INCLUDING CONSTRAINTS);
    ALTER TABLE message_stats ATTACH PARTITION message_stats_other DEFAULT;
    -- Found on message_stats_legacy (0034) and attached, not built.
    CREATE UNIQUE INDEX message_stats_key ON message_stats (tenant_id, day, sender, tag, slot);

    ALTER TABLE tenant_daily_stats RENAME TO tenant_daily_stats_legacy;
    ALTER INDEX tenant_daily_stats_pkey RENAME TO tenant_daily_stats_legacy_pkey;
    ALTER INDEX tenant_daily_stats_walk RENAME TO tenant_daily_stats_legacy_walk;
    CREATE TABLE tenant_daily_stats (LIKE tenant_daily_stats_legacy INCLUDING DEFAULTS INCLUDING CONSTRAINTS) PARTITION BY RANGE (day);
    ALTER TABLE tenant_daily_stats DROP CONSTRAINT tenant_daily_stats_legacy_bound;
    ALTER TABLE tenant_daily_stats ADD CONSTRAINT tenant_daily_stats_tenant_id_fkey
        FOREIGN KEY (tenant_id) REFERENCES tenants(id) ON DELETE CASCADE;
    EXECUTE format('ALTER TABLE tenant_daily_stats ATTACH PARTITION tenant_daily_stats_legacy FOR VALUES FROM (MINVALUE) TO (%L)', v_until);
    CREATE TABLE tenant_daily_stats_other (LIKE tenant_daily_stats INCLUDING DEFAULTS INCLUDING CONSTRAINTS);
    ALTER TABLE tenant_daily_stats ATTACH PARTITION tenant_daily_stats_other DEFAULT;
    ALTER TABLE tenant_daily_stats ADD CONSTRAINT tenant_daily_stats_pkey PRIMARY KEY (tenant_id, day);
    CREATE INDEX tenant_daily_stats_walk ON tenant_daily_stats (day, updated_at, tenant_id);

    FOREACH t IN ARRAY ARRAY['message_stats', 'message_stats_other', 'tenant_daily_stats', 'tenant_daily_stats_other'] LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
        EXECUTE format('CREATE POLICY tenant_isolation ON %I USING (tenant_id = herald_current_tenant() OR herald_is_system()) WITH CHECK (tenant_id = herald_current_tenant() OR herald_is_system())', t);
    END LOOP;
END $$;
DROP TABLE herald_stats_bound;

-- The statistics of 0015 kept in the writing session's slot (see 0033), so that concurrent writers for one
-- tenant, day, sender and tag meet on one row only when their sessions share a slot.
CREATE OR REPLACE FUNCTION herald_message_stats() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO message_stats AS s (tenant_id, day, sender, tag, slot, requests, accepted, delivered, soft_bounces, hard_bounces, invalid,
                                    spam_rejections, failed, dropped, opens, unique_opens, clicks, unique_clicks, unsubscribes)
    SELECT e.tenant_id, (e.created_at AT TIME ZONE 'UTC')::date, coalesce(e.data->>'from', ''), coalesce(e.data->>'tag', ''),
           (pg_backend_pid() % 8)::smallint,
           count(*) FILTER (WHERE e.type = 'message.accepted'
                               OR (e.type = 'message.dropped' AND (e.data->>'reason') IS DISTINCT FROM 'account_banned')),
           count(*) FILTER (WHERE e.type = 'message.accepted'),
           count(*) FILTER (WHERE e.type = 'message.delivered'),
           count(*) FILTER (WHERE e.type = 'message.deferred'),
           count(*) FILTER (WHERE e.type = 'message.bounced'),
           count(*) FILTER (WHERE e.type = 'message.bounced' AND (e.data->>'smtpResponse') ~ '^5[0-9][0-9] 5\.1\.'),
           count(*) FILTER (WHERE e.type = 'message.spam_rejected'),
           count(*) FILTER (WHERE e.type = 'message.failed'),
           count(*) FILTER (WHERE e.type = 'message.dropped'),
           count(*) FILTER (WHERE e.type = 'message.opened'),
           count(*) FILTER (WHERE e.type = 'message.opened' AND (e.data->>'first') = 'true'),
           count(*) FILTER (WHERE e.type = 'message.clicked'),
           count(*) FILTER (WHERE e.type = 'message.clicked' AND (e.data->>'first') = 'true'),
           count(*) FILTER (WHERE e.type = 'message.unsubscribed')
    FROM new_events e
    WHERE e.type LIKE 'message.%'
    GROUP BY 1, 2, 3, 4
    ORDER BY 1, 2, 3, 4
    ON CONFLICT (tenant_id, day, sender, tag, slot) DO UPDATE SET
        requests = s.requests + EXCLUDED.requests, accepted = s.accepted + EXCLUDED.accepted, delivered = s.delivered + EXCLUDED.delivered,
        soft_bounces = s.soft_bounces + EXCLUDED.soft_bounces, hard_bounces = s.hard_bounces + EXCLUDED.hard_bounces,
        invalid = s.invalid + EXCLUDED.invalid, spam_rejections = s.spam_rejections + EXCLUDED.spam_rejections,
        failed = s.failed + EXCLUDED.failed, dropped = s.dropped + EXCLUDED.dropped, opens = s.opens + EXCLUDED.opens,
        unique_opens = s.unique_opens + EXCLUDED.unique_opens, clicks = s.clicks + EXCLUDED.clicks,
        unique_clicks = s.unique_clicks + EXCLUDED.unique_clicks, unsubscribes = s.unsubscribes + EXCLUDED.unsubscribes;
    RETURN NULL;
END $$;

-- The upkeep of 0032, and the statistics (by day):
--   1. as before, for the tables partitioned by expiry day;
--   1b. (system only: the installation's work, never a tenant's retention change) the partition of the
--      statistics for the days from yesterday to 8 days ahead, and of every day a row waits for in a
--      DEFAULT partition (unless past its retention); a partition made for a day that has rows waiting
--      takes them in the same step (the DEFAULT partition is locked first, so none can come in between);
--   2. drop a partition whose last day is past: the expiry day, or for the statistics their day plus
--      the retention;
--   3. as before (legacy partitions);
--   3b. delete the rows of a statistics DEFAULT partition whose day is past the retention;
--   4, 5. as before.
CREATE OR REPLACE FUNCTION herald_partition_step(p_today date, p_create_only boolean) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    r record;
    v_start date;
    v_name text;
    v_other text;
    v_moved bigint;
BEGIN
    -- One step at a time in the installation (the scheduler's upkeep and a tenant's retention change may
    -- want the same partition): HistoryStore's advisory lock, held until the transaction ends.
    PERFORM pg_advisory_xact_lock(1751741300);
    FOR r IN SELECT * FROM herald_partitioned WHERE key_column = 'expires_on' ORDER BY parent LOOP
        SELECT n.s INTO v_start FROM (
            SELECT DISTINCT herald_partition_start(p_today + d.days + k, r.width_days) AS s
            FROM herald_partition_days(r.parent) AS d(days), generate_series(0, 8) k
        ) n
        WHERE to_regclass(format('%I', r.parent || '_p' || to_char(n.s, 'YYYYMMDD'))) IS NULL
        ORDER BY n.s LIMIT 1;
        IF v_start IS NOT NULL THEN
            v_name := r.parent || '_p' || to_char(v_start, 'YYYYMMDD');
            EXECUTE format('CREATE TABLE %I (LIKE %I INCLUDING DEFAULTS INCLUDING CONSTRAINTS)', v_name, r.parent);
            EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', v_name);
            EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', v_name);
            EXECUTE format('CREATE POLICY tenant_isolation ON %I USING (tenant_id = herald_current_tenant() OR herald_is_system()) WITH CHECK (tenant_id = herald_current_tenant() OR herald_is_system())', v_name);
            EXECUTE format('ALTER TABLE %I ATTACH PARTITION %I FOR VALUES FROM (%L) TO (%L)', r.parent, v_name, v_start, v_start + r.width_days);
            RETURN 'created ' || v_name;
        END IF;
    END LOOP;
    IF herald_is_system() THEN
        FOR r IN SELECT * FROM herald_partitioned WHERE key_column = 'day' ORDER BY parent LOOP
            v_other := r.parent || '_other';
            FOR v_start IN EXECUTE format($q$
                SELECT s FROM (
                    SELECT herald_partition_start($1 + k, $2) AS s FROM generate_series(-1, 8) k
                    UNION
                    SELECT herald_partition_start(o.day, $2) FROM %I o WHERE o.day + $3 >= $1
                ) n
                WHERE s >= $4 ORDER BY s $q$, v_other) USING p_today, r.width_days, r.fixed_days, r.legacy_since LOOP
                v_name := r.parent || '_p' || to_char(v_start, 'YYYYMMDD');
                CONTINUE WHEN to_regclass(format('%I', v_name)) IS NOT NULL;
                EXECUTE format('LOCK TABLE %I IN ACCESS EXCLUSIVE MODE', v_other);
                EXECUTE format('CREATE TABLE %I (LIKE %I INCLUDING DEFAULTS INCLUDING CONSTRAINTS)', v_name, r.parent);
                EXECUTE format('WITH moved AS (DELETE FROM %I WHERE day >= $1 AND day < $2 RETURNING *) INSERT INTO %I SELECT * FROM moved',
                               v_other, v_name) USING v_start, v_start + r.width_days;
                GET DIAGNOSTICS v_moved = ROW_COUNT;
                EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', v_name);
                EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', v_name);
                EXECUTE format('CREATE POLICY tenant_isolation ON %I USING (tenant_id = herald_current_tenant() OR herald_is_system()) WITH CHECK (tenant_id = herald_current_tenant() OR herald_is_system())', v_name);
                EXECUTE format('ALTER TABLE %I ATTACH PARTITION %I FOR VALUES FROM (%L) TO (%L)', r.parent, v_name, v_start, v_start + r.width_days);
                RETURN 'created ' || v_name || CASE WHEN v_moved > 0 THEN ' with ' || v_moved || ' rows from ' || v_other ELSE '' END;
            END LOOP;
        END LOOP;
    END IF;
    IF p_create_only THEN
        RETURN NULL;
    END IF;
    FOR r IN SELECT * FROM herald_partitioned ORDER BY parent LOOP
        SELECT c.relname INTO v_name
        FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
        WHERE i.inhparent = r.parent::regclass AND c.relname ~ ('^' || r.parent || '_p[0-9]{8}$')
          AND to_date(right(c.relname, 8), 'YYYYMMDD') + r.width_days + CASE r.key_column WHEN 'day' THEN r.fixed_days ELSE 0 END <= p_today
        ORDER BY c.relname LIMIT 1;
        IF v_name IS NOT NULL THEN
            EXECUTE format('DROP TABLE %I', v_name);
            RETURN 'dropped ' || v_name;
        END IF;
        v_name := r.parent || '_legacy';
        IF to_regclass(v_name) IS NOT NULL
           AND p_today > r.legacy_since + (SELECT max(d.days) FROM herald_partition_days(r.parent) AS d(days)) THEN
            EXECUTE format('DROP TABLE %I', v_name);
            RETURN 'dropped ' || v_name;
        END IF;
        IF r.key_column = 'day' THEN
            EXECUTE format('DELETE FROM %I WHERE day + $1 < $2', r.parent || '_other') USING r.fixed_days, p_today;
            GET DIAGNOSTICS v_moved = ROW_COUNT;
            IF v_moved > 0 THEN
                RETURN 'deleted ' || v_moved || ' rows past their retention from ' || r.parent || '_other';
            END IF;
        END IF;
    END LOOP;
    UPDATE messages SET expires_on = NULL
    WHERE expires_on = DATE '2000-01-01' AND status IN ('queued', 'deferred', 'sending', 'paused')
      AND id IN (SELECT id FROM messages WHERE expires_on = DATE '2000-01-01' AND status IN ('queued', 'deferred', 'sending', 'paused')
                 LIMIT 10000);
    GET DIAGNOSTICS v_moved = ROW_COUNT;
    IF v_moved > 0 THEN
        RETURN 'moved ' || v_moved || ' waiting messages out of messages_legacy';
    END IF;
    UPDATE webhook_deliveries SET expires_on = NULL
    WHERE expires_on = DATE '2000-01-01' AND status = 'pending'
      AND id IN (SELECT id FROM webhook_deliveries WHERE expires_on = DATE '2000-01-01' AND status = 'pending' LIMIT 10000);
    GET DIAGNOSTICS v_moved = ROW_COUNT;
    IF v_moved > 0 THEN
        RETURN 'moved ' || v_moved || ' pending deliveries out of webhook_deliveries_legacy';
    END IF;
    UPDATE messages SET expires_on = herald_keep_messages(tenant_id)
    WHERE expires_on IS NULL AND status IN ('delivered', 'bounced', 'spam_rejected', 'failed', 'dropped');
    GET DIAGNOSTICS v_moved = ROW_COUNT;
    IF v_moved > 0 THEN
        RETURN 'moved ' || v_moved || ' final messages out of messages_queue';
    END IF;
    UPDATE webhook_deliveries SET expires_on = herald_keep_webhooks() WHERE expires_on IS NULL AND status <> 'pending';
    GET DIAGNOSTICS v_moved = ROW_COUNT;
    IF v_moved > 0 THEN
        RETURN 'moved ' || v_moved || ' finished deliveries out of webhook_deliveries_queue';
    END IF;
    RETURN NULL;
END $$;

-- The statistics partitions of the coming days, made now.
DO $$
BEGIN
    PERFORM set_config('herald.system', 'on', true);
    LOOP
        EXIT WHEN herald_partition_step(herald_today(), true) IS NULL;
    END LOOP;
    PERFORM set_config('herald.system', 'off', true);
END $$;
