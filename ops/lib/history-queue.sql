-- ops/bench history (claim): :n due messages of the tenant :'tenant' in the queue, as accepted sends leave
-- them (queued, due now, with their message.accepted events).
\set ON_ERROR_STOP on
SELECT set_config('herald.system', 'on', false);
-- UUIDv7 ids of now, as Herald's are (time-ordered: their index entries go to the right edge).
CREATE FUNCTION pg_temp.uuid7(t timestamptz, salt text) RETURNS uuid LANGUAGE sql IMMUTABLE AS $$
    SELECT (lpad(to_hex((extract(epoch FROM t) * 1000)::bigint), 12, '0') || '7' || substr(md5(salt), 1, 3) || '8'
            || substr(md5(salt), 4, 15))::uuid $$;
WITH m AS (
    INSERT INTO messages (id, tenant_id, request_id, kind, priority, from_address, to_address, subject, html, body_text, headers,
                          status, next_attempt_at, created_at, updated_at)
    SELECT pg_temp.uuid7(clock_timestamp(), 'q' || g || random()), :'tenant', pg_temp.uuid7(clock_timestamp(), 'p' || g || random()), 'trigger', 1, 'app@bench.example', 'user' || g || '@example.org', 'Your code',
           '<p>Code: <b>123456</b></p>', 'Code: 123456', '[]', 'queued', now() - interval '1 second', now(), now()
    FROM generate_series(1, :n) g
    RETURNING id, tenant_id, to_address, from_address, created_at
)
INSERT INTO events (tenant_id, message_id, type, data, created_at)
SELECT tenant_id, id, 'message.accepted', herald_message_event(id, to_address, from_address, NULL, p_status => 'queued'), created_at FROM m;
