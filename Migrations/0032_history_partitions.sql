-- History apart from the queue (issue #17, item 5), step 3 of 3: messages and events become partitioned
-- tables, in one short transaction (no statement here scans a populated table; see 0030 and 0031).
--
-- messages   PARTITION BY RANGE (expires_on)
--   messages_queue        DEFAULT partition, expires_on IS NULL: what is due or in flight (queued,
--                         deferred, sending, paused). The claim, the lease and every outcome name
--                         `expires_on IS NULL`, so they read this small table and its indexes only.
--   messages_pYYYYMMDD    one day of expiry each: final messages (delivered, bounced, spam_rejected,
--                         failed, dropped), which took their day when they became final (today plus
--                         their tenant's message retention).
--   messages_legacy       the rows from before this migration, final ones only (the sentinel day
--                         2000-01-01); dropped whole once the longest retention has passed since.
-- events     PARTITION BY RANGE (expires_on)
--   events_pYYYYMMDD      seven days of expiry each (today plus the tenant's event retention).
--   events_legacy         as messages_legacy.
-- webhook_deliveries      as messages: webhook_deliveries_queue (DEFAULT, expires_on IS NULL) holds the
--                         pending ones; finished ones (succeeded, failed, cancelled) take today plus
--                         HERALD_WEBHOOK_RETENTION_DAYS (herald_partitioned.fixed_days), seven days a partition.
-- webhook_attempts        seven days a partition, by the day of the attempt plus the same retention.
--
-- Retention therefore drops whole partitions, never rows: a partition goes when its last day is past
-- (herald_partition_step, run by the scheduler's HistoryService). A row lives its retention plus at
-- most its partition's width (1 day for messages, 7 for events). A changed retention applies to rows
-- that become final (messages) or are written (events) after the change.

SET LOCAL lock_timeout = '10s';

-- The calendar of retention is the database's, so that every process agrees on which partition a row
-- goes to whatever its clock says.
CREATE FUNCTION herald_today() RETURNS date LANGUAGE sql STABLE PARALLEL SAFE
    AS $$ SELECT (now() AT TIME ZONE 'UTC')::date $$;

-- The day a message that becomes final now, or an event written now, expires (caller's row-level scope:
-- the tenant's own, or system).
CREATE FUNCTION herald_keep_messages(p_tenant uuid) RETURNS date LANGUAGE sql STABLE PARALLEL SAFE
    AS $$ SELECT herald_today() + coalesce((SELECT t.message_retention_days FROM tenants t WHERE t.id = p_tenant), 30) $$;
CREATE FUNCTION herald_keep_events(p_tenant uuid) RETURNS date LANGUAGE sql STABLE PARALLEL SAFE
    AS $$ SELECT herald_today() + coalesce((SELECT t.event_retention_days FROM tenants t WHERE t.id = p_tenant), 180) $$;

-- messages -----------------------------------------------------------------------------------------
ALTER TABLE messages RENAME TO messages_legacy;
ALTER INDEX messages_pkey RENAME TO messages_legacy_pkey;
ALTER INDEX messages_due RENAME TO messages_legacy_due;
ALTER INDEX messages_leased RENAME TO messages_legacy_leased;
ALTER INDEX messages_request RENAME TO messages_legacy_request;
ALTER INDEX messages_system_recent RENAME TO messages_legacy_system_recent;
ALTER INDEX messages_task RENAME TO messages_legacy_task;
ALTER INDEX messages_tenant_created RENAME TO messages_legacy_tenant_created;
ALTER INDEX messages_id RENAME TO messages_legacy_id;

CREATE TABLE messages (LIKE messages_legacy INCLUDING DEFAULTS INCLUDING CONSTRAINTS) PARTITION BY RANGE (expires_on);
ALTER TABLE messages DROP CONSTRAINT messages_legacy_bound;
ALTER TABLE messages ALTER COLUMN expires_on DROP DEFAULT;
ALTER TABLE messages ADD CONSTRAINT messages_tenant_id_fkey FOREIGN KEY (tenant_id) REFERENCES tenants(id) ON DELETE CASCADE;

CREATE TABLE messages_queue (LIKE messages INCLUDING DEFAULTS INCLUDING CONSTRAINTS);
ALTER TABLE messages_queue ADD CONSTRAINT messages_queue_unexpired CHECK (expires_on IS NULL);
ALTER TABLE messages ATTACH PARTITION messages_queue DEFAULT;
-- No scan: messages_legacy_bound (validated by 0031) proves the range, messages_queue_unexpired proves
-- the default partition holds none of it.
ALTER TABLE messages ATTACH PARTITION messages_legacy FOR VALUES FROM (MINVALUE) TO ('2000-01-02');

-- Each is found on messages_legacy (same definition) and attached, not built.
CREATE INDEX messages_id ON messages (id);
CREATE INDEX messages_due ON messages (priority, next_attempt_at) WHERE status IN ('queued', 'deferred');
CREATE INDEX messages_leased ON messages (locked_until) WHERE status = 'sending';
CREATE INDEX messages_request ON messages (request_id);
CREATE INDEX messages_system_recent ON messages (tenant_id, created_at) WHERE kind = 'system';
CREATE INDEX messages_task ON messages (task_id) WHERE task_id IS NOT NULL;
CREATE INDEX messages_tenant_created ON messages (tenant_id, created_at);

-- The queue rows among the legacy ones (however many: a large batch may be waiting) are not moved here,
-- under this transaction's locks, but by the upkeep right after, 10,000 at a time (herald_partition_step).

-- events -------------------------------------------------------------------------------------------
ALTER TABLE events RENAME TO events_legacy;
ALTER INDEX events_pkey RENAME TO events_legacy_pkey;
ALTER INDEX events_message RENAME TO events_legacy_message;
ALTER INDEX events_id RENAME TO events_legacy_id;
DROP TRIGGER events_webhook_fanout ON events_legacy;
DROP TRIGGER events_message_stats ON events_legacy;

CREATE TABLE events (LIKE events_legacy INCLUDING DEFAULTS INCLUDING CONSTRAINTS) PARTITION BY RANGE (expires_on);
ALTER TABLE events DROP CONSTRAINT events_legacy_bound;
-- Statements that write events under one tenant's scope get its retention by default; those that write
-- for many tenants at once (the outcome recorder, the grader) name herald_keep_events(tenant_id).
ALTER TABLE events ALTER COLUMN expires_on SET DEFAULT herald_keep_events(herald_current_tenant());
ALTER TABLE events ADD CONSTRAINT events_tenant_id_fkey FOREIGN KEY (tenant_id) REFERENCES tenants(id) ON DELETE CASCADE;
ALTER SEQUENCE events_id_seq OWNED BY events.id;
ALTER TABLE events ATTACH PARTITION events_legacy FOR VALUES FROM (MINVALUE) TO ('2000-01-02');
CREATE INDEX events_id ON events (id);
CREATE INDEX events_message ON events (message_id);

CREATE TRIGGER events_webhook_fanout AFTER INSERT ON events
    REFERENCING NEW TABLE AS new_events
    FOR EACH STATEMENT EXECUTE FUNCTION herald_webhook_fanout();
CREATE TRIGGER events_message_stats AFTER INSERT ON events
    REFERENCING NEW TABLE AS new_events
    FOR EACH STATEMENT EXECUTE FUNCTION herald_message_stats();

-- webhook deliveries and attempts ---------------------------------------------------------------------
-- (The attempts' foreign key to their delivery goes: a foreign key must reference a unique key, and the
-- partitioned deliveries have none on id alone. Deleting an endpoint deletes its attempts itself.)
ALTER TABLE webhook_attempts DROP CONSTRAINT webhook_attempts_delivery_id_fkey;
ALTER TABLE webhook_deliveries RENAME TO webhook_deliveries_legacy;
ALTER INDEX webhook_deliveries_pkey RENAME TO webhook_deliveries_legacy_pkey;
ALTER INDEX webhook_deliveries_due RENAME TO webhook_deliveries_legacy_due;
ALTER INDEX webhook_deliveries_endpoint_id_event_id_key RENAME TO webhook_deliveries_legacy_endpoint_id_event_id_key;
ALTER INDEX webhook_deliveries_id RENAME TO webhook_deliveries_legacy_id;
ALTER INDEX webhook_deliveries_endpoint_event RENAME TO webhook_deliveries_legacy_endpoint_event;

CREATE TABLE webhook_deliveries (LIKE webhook_deliveries_legacy INCLUDING DEFAULTS INCLUDING CONSTRAINTS) PARTITION BY RANGE (expires_on);
ALTER TABLE webhook_deliveries DROP CONSTRAINT webhook_deliveries_legacy_bound;
ALTER TABLE webhook_deliveries ALTER COLUMN expires_on DROP DEFAULT;
ALTER TABLE webhook_deliveries ADD CONSTRAINT webhook_deliveries_tenant_id_fkey FOREIGN KEY (tenant_id) REFERENCES tenants(id) ON DELETE CASCADE;
ALTER TABLE webhook_deliveries ADD CONSTRAINT webhook_deliveries_endpoint_id_fkey
    FOREIGN KEY (endpoint_id) REFERENCES webhook_endpoints(id) ON DELETE CASCADE;
CREATE TABLE webhook_deliveries_queue (LIKE webhook_deliveries INCLUDING DEFAULTS INCLUDING CONSTRAINTS);
ALTER TABLE webhook_deliveries_queue ADD CONSTRAINT webhook_deliveries_queue_unexpired CHECK (expires_on IS NULL);
ALTER TABLE webhook_deliveries ATTACH PARTITION webhook_deliveries_queue DEFAULT;
ALTER TABLE webhook_deliveries ATTACH PARTITION webhook_deliveries_legacy FOR VALUES FROM (MINVALUE) TO ('2000-01-02');
CREATE INDEX webhook_deliveries_id ON webhook_deliveries (id);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at) WHERE status = 'pending';
CREATE INDEX webhook_deliveries_endpoint_event ON webhook_deliveries (endpoint_id, event_id);
-- The pending ones move to the queue partition with the upkeep, as the messages do.

ALTER TABLE webhook_attempts RENAME TO webhook_attempts_legacy;
ALTER INDEX webhook_attempts_delivery RENAME TO webhook_attempts_legacy_delivery;
CREATE TABLE webhook_attempts (LIKE webhook_attempts_legacy INCLUDING DEFAULTS INCLUDING CONSTRAINTS) PARTITION BY RANGE (expires_on);
ALTER TABLE webhook_attempts DROP CONSTRAINT webhook_attempts_legacy_bound;
ALTER TABLE webhook_attempts ADD CONSTRAINT webhook_attempts_tenant_id_fkey FOREIGN KEY (tenant_id) REFERENCES tenants(id) ON DELETE CASCADE;
ALTER TABLE webhook_attempts ATTACH PARTITION webhook_attempts_legacy FOR VALUES FROM (MINVALUE) TO ('2000-01-02');
CREATE INDEX webhook_attempts_delivery ON webhook_attempts (delivery_id, attempted_at);

-- The fan-out as in 0014, and each delivery remembers its event's partition.
CREATE OR REPLACE FUNCTION herald_webhook_fanout() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO webhook_deliveries (id, tenant_id, endpoint_id, event_id, event_expires, next_attempt_at, created_at, updated_at)
    SELECT gen_random_uuid(), e.tenant_id, w.id, e.id, e.expires_on, e.created_at, e.created_at, e.created_at
    FROM new_events e
    JOIN webhook_endpoints w ON w.tenant_id = e.tenant_id AND w.enabled
                             AND (w.event_types = '{*}' OR e.type = ANY (w.event_types))
    WHERE e.type <> 'webhook.test';
    RETURN NULL;
END $$;

DO $$
DECLARE t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['messages', 'messages_queue', 'events', 'webhook_deliveries', 'webhook_deliveries_queue', 'webhook_attempts'] LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
        EXECUTE format('CREATE POLICY tenant_isolation ON %I USING (tenant_id = herald_current_tenant() OR herald_is_system()) WITH CHECK (tenant_id = herald_current_tenant() OR herald_is_system())', t);
    END LOOP;
END $$;

-- Partition upkeep --------------------------------------------------------------------------------
-- The partitioned history tables: the width of their partitions in days, which retention decides their
-- rows' day, and since when their legacy partition holds the rows from before 0032.
-- fixed_days: the installation's retention (webhooks: HERALD_WEBHOOK_RETENTION_DAYS, written by the upkeep)
-- instead of each tenant's.
CREATE TABLE herald_partitioned (
    parent        text PRIMARY KEY,
    width_days    integer NOT NULL CHECK (width_days BETWEEN 1 AND 31),
    retention     text NOT NULL CHECK (retention IN ('message', 'event', 'fixed')),
    fixed_days    integer CHECK (fixed_days BETWEEN 1 AND 3650),
    legacy_since  date NOT NULL
);
INSERT INTO herald_partitioned VALUES
    ('messages', 1, 'message', NULL, herald_today()), ('events', 7, 'event', NULL, herald_today()),
    ('webhook_deliveries', 7, 'fixed', 30, herald_today()), ('webhook_attempts', 7, 'fixed', 30, herald_today());

-- The day a webhook delivery that finishes now, or an attempt made now, expires.
CREATE FUNCTION herald_keep_webhooks() RETURNS date LANGUAGE sql STABLE PARALLEL SAFE
    AS $$ SELECT herald_today() + coalesce((SELECT p.fixed_days FROM herald_partitioned p WHERE p.parent = 'webhook_deliveries'), 30) $$;
ALTER TABLE webhook_attempts ALTER COLUMN expires_on SET DEFAULT herald_keep_webhooks();

-- The retentions in use for the rows of p_parent: every tenant's (in the caller's scope) and the default,
-- or the installation's.
CREATE FUNCTION herald_partition_days(p_parent text) RETURNS SETOF integer LANGUAGE sql STABLE AS $$
    SELECT CASE p.retention WHEN 'message' THEN t.message_retention_days ELSE t.event_retention_days END
    FROM herald_partitioned p, tenants t WHERE p.parent = p_parent AND p.retention IN ('message', 'event')
    UNION
    SELECT CASE p.retention WHEN 'message' THEN 30 WHEN 'event' THEN 180 ELSE p.fixed_days END
    FROM herald_partitioned p WHERE p.parent = p_parent
$$;

-- Partitions start on days counted from Monday 2000-01-03 in steps of the width.
CREATE FUNCTION herald_partition_start(p_day date, p_width integer) RETURNS date LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT p_day - ((p_day - DATE '2000-01-03') % p_width) $$;

-- One step of upkeep as of p_today, or NULL when there is nothing to do; the caller runs each step in its
-- own transaction, so that no lock is held across steps. In this order:
--   1. create the partition that rows becoming final (or written) in the next 8 days need, for every
--      retention some tenant (in the caller's scope) has, the defaults, and the installation's (webhooks);
--   2. (unless p_create_only) drop a partition whose last day is before p_today;
--   3. (unless p_create_only) drop a legacy partition once the longest retention has passed since 0032;
--   4. (unless p_create_only) move what waits (queued, deferred, sending or paused messages, pending
--      webhook deliveries) out of a legacy partition into the queue partition, 10,000 rows a step: the rows
--      from before 0032, and those a process of the previous release wrote between 0030 and 0032;
--   5. (unless p_create_only) give final messages (and finished webhook deliveries) still in their queue
--      partition their day (written by a process of the previous release during a rolling upgrade).
-- A partition is made as a table and then attached (SHARE UPDATE EXCLUSIVE on the parent, not the
-- ACCESS EXCLUSIVE of CREATE TABLE … PARTITION OF), with its own row-level security.
CREATE FUNCTION herald_partition_step(p_today date, p_create_only boolean) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    r record;
    v_start date;
    v_name text;
    v_moved bigint;
BEGIN
    -- One step at a time in the installation (the scheduler's upkeep and a tenant's retention change may
    -- want the same partition): HistoryStore's advisory lock, held until the transaction ends.
    PERFORM pg_advisory_xact_lock(1751741300);
    FOR r IN SELECT * FROM herald_partitioned ORDER BY parent LOOP
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
    IF p_create_only THEN
        RETURN NULL;
    END IF;
    FOR r IN SELECT * FROM herald_partitioned ORDER BY parent LOOP
        SELECT c.relname INTO v_name
        FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
        WHERE i.inhparent = r.parent::regclass AND c.relname ~ ('^' || r.parent || '_p[0-9]{8}$')
          AND to_date(right(c.relname, 8), 'YYYYMMDD') + r.width_days <= p_today
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

-- The partitions of today's retentions, made now.
DO $$
BEGIN
    PERFORM set_config('herald.system', 'on', true);
    LOOP
        EXIT WHEN herald_partition_step(herald_today(), true) IS NULL;
    END LOOP;
    PERFORM set_config('herald.system', 'off', true);
END $$;

-- Accepting: dropped recipients' messages are final at once, so they take their day as they are written.
CREATE OR REPLACE FUNCTION herald_accept_write(
    p_tenant uuid,
    p_request_ids uuid[], p_sender_ids uuid[], p_froms text[], p_aliases text[], p_reply_tos text[], p_subjects text[], p_htmls text[],
    p_texts text[], p_headers text[], p_tags text[], p_ats timestamptz[], p_trackings boolean[], p_raws bytea[], p_kinds text[],
    p_priorities integer[], p_unsubscribes boolean[],
    p_quota_update boolean, p_quota_taken integer, p_quota_ceiling integer, p_quota_day date,
    p_ids uuid[], p_ordinals bigint[], p_addresses text[], p_statuses text[], p_reasons text[],
    p_accepted text, p_dropped text
) RETURNS boolean LANGUAGE plpgsql AS $$
DECLARE
    written boolean;
BEGIN
    PERFORM set_config('herald.tenant_id', p_tenant::text, true);
    WITH j AS (
        SELECT * FROM unnest(p_request_ids, p_sender_ids, p_froms, p_aliases, p_reply_tos, p_subjects, p_htmls, p_texts, p_headers, p_tags,
                             p_ats, p_trackings, p_raws, p_kinds, p_priorities, p_unsubscribes)
            WITH ORDINALITY AS j(request_id, sender_id, from_address, from_name, reply_to, subject, html, body_text, headers, tag, at, tracking,
                                 raw, kind, priority, unsubscribe_link, n)
    ), q AS (
        UPDATE quota_usage u SET used = u.used + p_quota_taken
        WHERE p_quota_update AND u.tenant_id = p_tenant AND u.day = p_quota_day AND u.used + p_quota_taken <= p_quota_ceiling
        RETURNING 1
    ), ok AS (
        SELECT NOT p_quota_update OR EXISTS (SELECT FROM q) AS ok
    ), raw_written AS (
        INSERT INTO message_raw (tenant_id, request_id, raw, created_at)
        SELECT p_tenant, j.request_id, j.raw, j.at FROM j, ok WHERE ok.ok AND octet_length(j.raw) > 0
    ), m AS (
        INSERT INTO messages (id, tenant_id, request_id, kind, priority, sender_id, from_address, from_name, to_address, reply_to, subject,
                              html, body_text, headers, tag, status, reason, next_attempt_at, created_at, updated_at, tracking,
                              unsubscribe_link, raw, expires_on)
        SELECT r.id, p_tenant, j.request_id, j.kind, j.priority, j.sender_id, j.from_address, nullif(j.from_name, ''), r.to_address,
               nullif(j.reply_to, ''), j.subject, nullif(j.html, ''), nullif(j.body_text, ''), j.headers::jsonb, nullif(j.tag, ''),
               r.status, nullif(r.reason, ''), CASE WHEN r.status = 'queued' THEN j.at END, j.at, j.at,
               j.tracking, j.unsubscribe_link, octet_length(j.raw) > 0,
               CASE WHEN r.status <> 'queued' THEN herald_keep_messages(p_tenant) END
        FROM unnest(p_ids, p_ordinals, p_addresses, p_statuses, p_reasons) AS r(id, n, to_address, status, reason)
        JOIN j USING (n) CROSS JOIN ok
        WHERE ok.ok
        RETURNING messages.id, messages.to_address, messages.from_address, messages.status, messages.reason, messages.tag, messages.created_at
    ), e AS (
        INSERT INTO events (tenant_id, message_id, type, data, created_at)
        SELECT p_tenant, m.id, CASE WHEN m.status = 'queued' THEN p_accepted ELSE p_dropped END,
               herald_message_event(m.id, m.to_address, m.from_address, m.tag, p_status => m.status, p_reason => m.reason),
               m.created_at
        FROM m
    )
    SELECT ok.ok INTO written FROM ok;
    RETURN written;
END $$;