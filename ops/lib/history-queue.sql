-- ops/bench history (claim): :n due messages of the tenant :'tenant' in the queue, as accepted sends leave
-- them (queued, due now, with their message.accepted events).
\set ON_ERROR_STOP on
SELECT set_config('herald.system', 'on', false);
WITH m AS (
    INSERT INTO messages (id, tenant_id, request_id, kind, priority, from_address, to_address, subject, html, body_text, headers,
                          status, next_attempt_at, created_at, updated_at)
    SELECT gen_random_uuid(), :'tenant', gen_random_uuid(), 'trigger', 1, 'app@bench.example', 'user' || g || '@example.org', 'Your code',
           '<p>Code: <b>123456</b></p>', 'Code: 123456', '[]', 'queued', now() - interval '1 second', now(), now()
    FROM generate_series(1, :n) g
    RETURNING id, tenant_id, to_address, from_address, created_at
)
INSERT INTO events (tenant_id, message_id, type, data, created_at)
SELECT tenant_id, id, 'message.accepted', herald_message_event(id, to_address, from_address, NULL, p_status => 'queued'), created_at FROM m;
