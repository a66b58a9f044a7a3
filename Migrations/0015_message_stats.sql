-- Sending statistics per tenant, UTC day, sender address and tag, kept as events are written: a
-- statement-level trigger on events (like the webhook fan-out) adds each statement's message events to
-- their counters, so GET /v1/stats reads a few rows per day instead of scanning messages, and the
-- numbers agree with the events table by construction.

CREATE TABLE message_stats (
    tenant_id       uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    day             date NOT NULL,
    sender          text NOT NULL,
    -- '' when the messages had no tag.
    tag             text NOT NULL,
    -- Recipients asked for: accepted plus dropped at acceptance.
    requests        bigint NOT NULL DEFAULT 0,
    accepted        bigint NOT NULL DEFAULT 0,
    delivered       bigint NOT NULL DEFAULT 0,
    -- Each deferral (a 4xx or an unreachable server) counts once.
    soft_bounces    bigint NOT NULL DEFAULT 0,
    hard_bounces    bigint NOT NULL DEFAULT 0,
    -- Hard bounces saying the address does not exist (5.1.x).
    invalid         bigint NOT NULL DEFAULT 0,
    spam_rejections bigint NOT NULL DEFAULT 0,
    -- Retries ran out.
    failed          bigint NOT NULL DEFAULT 0,
    dropped         bigint NOT NULL DEFAULT 0,
    opens           bigint NOT NULL DEFAULT 0,
    unique_opens    bigint NOT NULL DEFAULT 0,
    clicks          bigint NOT NULL DEFAULT 0,
    unique_clicks   bigint NOT NULL DEFAULT 0,
    unsubscribes    bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant_id, day, sender, tag)
);

ALTER TABLE message_stats ENABLE ROW LEVEL SECURITY;
ALTER TABLE message_stats FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON message_stats
    USING (tenant_id = herald_current_tenant() OR herald_is_system())
    WITH CHECK (tenant_id = herald_current_tenant() OR herald_is_system());

-- Rows are added in key order, so that concurrent writers lock them in one order.
CREATE FUNCTION herald_message_stats() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO message_stats AS s (tenant_id, day, sender, tag, requests, accepted, delivered, soft_bounces, hard_bounces, invalid,
                                    spam_rejections, failed, dropped, opens, unique_opens, clicks, unique_clicks, unsubscribes)
    SELECT e.tenant_id, (e.created_at AT TIME ZONE 'UTC')::date, coalesce(e.data->>'from', ''), coalesce(e.data->>'tag', ''),
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
    ON CONFLICT (tenant_id, day, sender, tag) DO UPDATE SET
        requests = s.requests + EXCLUDED.requests, accepted = s.accepted + EXCLUDED.accepted, delivered = s.delivered + EXCLUDED.delivered,
        soft_bounces = s.soft_bounces + EXCLUDED.soft_bounces, hard_bounces = s.hard_bounces + EXCLUDED.hard_bounces,
        invalid = s.invalid + EXCLUDED.invalid, spam_rejections = s.spam_rejections + EXCLUDED.spam_rejections,
        failed = s.failed + EXCLUDED.failed, dropped = s.dropped + EXCLUDED.dropped, opens = s.opens + EXCLUDED.opens,
        unique_opens = s.unique_opens + EXCLUDED.unique_opens, clicks = s.clicks + EXCLUDED.clicks,
        unique_clicks = s.unique_clicks + EXCLUDED.unique_clicks, unsubscribes = s.unsubscribes + EXCLUDED.unsubscribes;
    RETURN NULL;
END $$;

CREATE TRIGGER events_message_stats AFTER INSERT ON events
    REFERENCING NEW TABLE AS new_events
    FOR EACH STATEMENT EXECUTE FUNCTION herald_message_stats();
