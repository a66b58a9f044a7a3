-- ops/bench history: :rows messages of history for the tenant :'tenant' (delivered, each with its
-- message.accepted and message.delivered events), created over the last 30 days and stored where Herald
-- would have put them: the partitions of their expiry days (30 days after each for the messages, 180 for
-- the events), made by the upkeep as of each of those days. In chunks of 1,000,000 messages, each its
-- own transaction. Ids are UUIDv7 of their creation time, as Herald's are.
\set ON_ERROR_STOP on
SELECT set_config('herald.system', 'on', false);
CREATE FUNCTION pg_temp.uuid7(t timestamptz, salt text) RETURNS uuid LANGUAGE sql IMMUTABLE AS $$
    SELECT (lpad(to_hex((extract(epoch FROM t) * 1000)::bigint), 12, '0') || '7' || substr(md5(salt), 1, 3) || '8'
            || substr(md5(salt), 4, 15))::uuid $$;
DO $$
BEGIN
    FOR k IN REVERSE 200..0 LOOP
        LOOP
            EXIT WHEN herald_partition_step(herald_today() - k, true) IS NULL;
        END LOOP;
    END LOOP;
END $$;
SELECT count(*) AS partitions FROM pg_inherits WHERE inhparent IN ('messages'::regclass, 'events'::regclass);
SELECT set_config('herald_bench.rows', :'rows', false), set_config('herald_bench.tenant', :'tenant', false);
DO $fill$
DECLARE
    v_rows bigint := current_setting('herald_bench.rows')::bigint;
    v_tenant uuid := current_setting('herald_bench.tenant')::uuid;
    v_start bigint := 0;
    v_end bigint;
BEGIN
    WHILE v_start < v_rows LOOP
        v_end := least(v_start + 1000000, v_rows);
        WITH m AS (
            INSERT INTO messages (id, tenant_id, request_id, kind, priority, from_address, to_address, subject, html, body_text, headers,
                                  status, attempts, last_response, created_at, updated_at, expires_on)
            SELECT pg_temp.uuid7(t, 'm' || g), v_tenant, pg_temp.uuid7(t, 'r' || g), 'trigger', 1, 'app@bench.example',
                   'user' || g || '@example.org', 'Your code', '<p>Code: <b>123456</b></p>', 'Code: 123456', '[]',
                   'delivered', 1, '250 2.0.0 Ok: queued as 4XYZ', t, t + interval '2 seconds', (t AT TIME ZONE 'UTC')::date + 30
            FROM (SELECT g, now() - interval '30 days' + (g::double precision / v_rows) * interval '30 days' AS t
                  FROM generate_series(v_start, v_end - 1) g) s
            RETURNING id, tenant_id, to_address, from_address, created_at
        )
        INSERT INTO events (tenant_id, message_id, type, data, created_at, expires_on)
        SELECT m.tenant_id, m.id, e.type,
               herald_message_event(m.id, m.to_address, m.from_address, NULL, p_status => e.status,
                                    p_smtp_response => CASE WHEN e.status = 'delivered' THEN '250 2.0.0 Ok: queued as 4XYZ' END,
                                    p_attempts => CASE WHEN e.status = 'delivered' THEN 1 END),
               m.created_at + e.after, (m.created_at AT TIME ZONE 'UTC')::date + 180
        FROM m, (VALUES ('message.accepted', 'queued', interval '0'), ('message.delivered', 'delivered', interval '2 seconds')) e(type, status, after);
        COMMIT;
        RAISE NOTICE 'history: % of % messages', v_end, v_rows;
        v_start := v_end;
    END LOOP;
END $fill$;
-- The upkeep as of today, as the scheduler runs it: the partitions made above for days already past
-- (empty) go.
DO $$
BEGIN
    LOOP
        EXIT WHEN herald_partition_step(herald_today(), false) IS NULL;
    END LOOP;
END $$;
SELECT inhparent::regclass AS history, count(*) AS partitions FROM pg_inherits
WHERE inhparent IN ('messages'::regclass, 'events'::regclass) GROUP BY 1;
