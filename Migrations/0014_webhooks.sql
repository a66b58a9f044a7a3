-- Webhooks: tenants' endpoints, one delivery row per (event, endpoint), and every attempt's log.
--
-- Every delivery is written three times (fan-out, claim, outcome), so its table keeps to three indexes:
-- the primary key, the due index and (endpoint, event), which also serves the delivery log (newest
-- event first) and per-endpoint pruning. A first attempt that succeeds leaves no attempt row: the
-- delivery's last_* columns are that attempt; failed attempts get a row each.
--
-- Fan-out happens where events are written: a statement-level trigger on events turns the rows a
-- statement inserted into deliveries for the matching enabled endpoints of their tenant, in the same
-- transaction. So whatever writes an event (accept, delivery, grades, unsubscribe, …) needs no webhook
-- code, an event is fanned out exactly once however many dispatchers run, and a tenant without
-- endpoints costs one empty join.

CREATE TABLE webhook_endpoints (
    id                      uuid PRIMARY KEY,
    tenant_id               uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    url                     text NOT NULL,
    -- '{*}' or a list of event types.
    event_types             text[] NOT NULL,
    enabled                 boolean NOT NULL DEFAULT true,
    -- Why it was disabled: 'tenant', 'gone' (answered 410), 'failing' (5 days without a success).
    disabled_reason         text,
    -- The signing secret, sealed (SecretBox, context webhook:<id>); after a rotation the previous one
    -- is still signed with until previous_secret_until.
    secret_ciphertext       bytea NOT NULL,
    previous_secret         bytea,
    previous_secret_until   timestamptz,
    -- Since when every attempt failed (NULL after a success).
    failing_since           timestamptz,
    created_at              timestamptz NOT NULL DEFAULT now(),
    updated_at              timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX webhook_endpoints_tenant ON webhook_endpoints (tenant_id) WHERE enabled;

CREATE TABLE webhook_deliveries (
    id                uuid PRIMARY KEY,
    tenant_id         uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    endpoint_id       uuid NOT NULL REFERENCES webhook_endpoints(id) ON DELETE CASCADE,
    event_id          bigint NOT NULL,
    -- pending (to send, or being sent while locked_by is set), succeeded, failed (no more attempts),
    -- cancelled (its endpoint was disabled or deleted).
    status            text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'succeeded', 'failed', 'cancelled')),
    attempts          integer NOT NULL DEFAULT 0,
    -- When it is due; a dispatcher that claims it moves this to the end of its lease, so the rows of a
    -- dispatcher that died come back by themselves.
    next_attempt_at   timestamptz NOT NULL,
    locked_by         text,
    last_attempt_at   timestamptz,
    last_http_status  integer,
    last_error        text,
    last_latency_ms   integer,
    last_response     text,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    UNIQUE (endpoint_id, event_id)
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at) WHERE status = 'pending';

-- Attempts that did not succeed (the successful one is the delivery's last_* columns).
CREATE TABLE webhook_attempts (
    tenant_id     uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    delivery_id   uuid NOT NULL REFERENCES webhook_deliveries(id) ON DELETE CASCADE,
    attempted_at  timestamptz NOT NULL,
    http_status   integer,
    error         text,
    latency_ms    integer NOT NULL,
    response      text
);
CREATE INDEX webhook_attempts_delivery ON webhook_attempts (delivery_id, attempted_at);

DO $$
DECLARE t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['webhook_endpoints', 'webhook_deliveries', 'webhook_attempts'] LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
        EXECUTE format('CREATE POLICY tenant_isolation ON %I USING (tenant_id = herald_current_tenant() OR herald_is_system()) WITH CHECK (tenant_id = herald_current_tenant() OR herald_is_system())', t);
    END LOOP;
END $$;

-- The outbox fan-out. Runs with the inserting transaction's rights, so row-level security shows it
-- only endpoints of the tenant it may write for. `webhook.test` events go only to the endpoint that
-- asked for them (inserted by the API directly), never through here.
CREATE FUNCTION herald_webhook_fanout() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO webhook_deliveries (id, tenant_id, endpoint_id, event_id, next_attempt_at, created_at, updated_at)
    SELECT gen_random_uuid(), e.tenant_id, w.id, e.id, e.created_at, e.created_at, e.created_at
    FROM new_events e
    JOIN webhook_endpoints w ON w.tenant_id = e.tenant_id AND w.enabled
                             AND (w.event_types = '{*}' OR e.type = ANY (w.event_types))
    WHERE e.type <> 'webhook.test';
    RETURN NULL;
END $$;

CREATE TRIGGER events_webhook_fanout AFTER INSERT ON events
    REFERENCING NEW TABLE AS new_events
    FOR EACH STATEMENT EXECUTE FUNCTION herald_webhook_fanout();
