-- ops/bench history (migration): :rows messages for the tenant :'tenant' in the layout before migration 0030
-- (one plain messages table, one plain events table), as a release before issue #17 item 5 left them: 1 in
-- 100 still waiting (queued, deferred or paused), the rest delivered; each with its two events. In chunks
-- of 1,000,000 messages, each its own transaction.
\set ON_ERROR_STOP on
SELECT set_config('herald.system', 'on', false);
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
                                  status, attempts, next_attempt_at, last_response, created_at, updated_at)
            SELECT gen_random_uuid(), v_tenant, gen_random_uuid(), 'trigger', 1, 'app@bench.example', 'user' || g || '@example.org',
                   'Your code', '<p>Code: <b>123456</b></p>', 'Code: 123456', '[]',
                   CASE g % 100 WHEN 0 THEN 'queued' WHEN 1 THEN 'deferred' WHEN 2 THEN 'paused' ELSE 'delivered' END,
                   CASE WHEN g % 100 IN (1, 2) THEN 1 WHEN g % 100 = 0 THEN 0 ELSE 1 END,
                   CASE WHEN g % 100 IN (0, 1, 2) THEN now() + interval '1 day' END, '250 2.0.0 Ok', t, t
            FROM (SELECT g, now() - interval '30 days' + (g::double precision / v_rows) * interval '30 days' AS t
                  FROM generate_series(v_start, v_end - 1) g) s
            RETURNING id, tenant_id, created_at
        )
        INSERT INTO events (tenant_id, message_id, type, data, created_at)
        SELECT m.tenant_id, m.id, e.type, jsonb_build_object('messageId', m.id), m.created_at
        FROM m, (VALUES ('message.accepted'), ('message.delivered')) e(type);
        COMMIT;
        v_start := v_end;
    END LOOP;
END $fill$;
