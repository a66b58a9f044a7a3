-- The durable queue (one row per recipient), its events (the outbox webhooks read), idempotent send
-- requests, quota counters, and the suppression and invalid-address lists.

CREATE TABLE messages (
    id              uuid PRIMARY KEY,
    tenant_id       uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    -- The send request (or task) the message came from.
    request_id      uuid NOT NULL,
    -- trigger and system mail go before batch mail.
    kind            text NOT NULL CHECK (kind IN ('trigger', 'batch', 'system')),
    priority        smallint NOT NULL,
    sender_id       uuid,
    from_address    text NOT NULL,
    from_name       text,
    to_address      text NOT NULL,
    reply_to        text,
    subject         text NOT NULL,
    html            text,
    body_text       text,
    headers         jsonb NOT NULL DEFAULT '[]',
    tag             text,
    status          text NOT NULL CHECK (status IN ('queued', 'deferred', 'sending', 'delivered', 'bounced', 'spam_rejected', 'failed', 'dropped')),
    reason          text,
    attempts        integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz,
    locked_by       text,
    locked_until    timestamptz,
    last_response   text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);
-- What the scheduler claims: due rows by priority.
CREATE INDEX messages_due ON messages (priority, next_attempt_at) WHERE status IN ('queued', 'deferred');
CREATE INDEX messages_tenant_created ON messages (tenant_id, created_at);
CREATE INDEX messages_request ON messages (request_id);

CREATE TABLE events (
    id          bigserial PRIMARY KEY,
    tenant_id   uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    message_id  uuid,
    type        text NOT NULL,
    data        jsonb NOT NULL DEFAULT '{}',
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX events_message ON events (message_id);

CREATE TABLE send_requests (
    id              uuid PRIMARY KEY,
    tenant_id       uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    idempotency_key text NOT NULL,
    body_hash       bytea NOT NULL,
    response        jsonb NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, idempotency_key)
);

CREATE TABLE quota_usage (
    tenant_id   uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    day         date NOT NULL,
    used        integer NOT NULL DEFAULT 0 CHECK (used >= 0),
    PRIMARY KEY (tenant_id, day)
);

CREATE TABLE suppressions (
    tenant_id   uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    address     text NOT NULL,
    -- tenant-wide ('*'), or 'tag:<name>' / 'list:<id>' (unsubscribe scopes).
    scope       text NOT NULL DEFAULT '*',
    source      text NOT NULL CHECK (source IN ('api', 'unsubscribe', 'complaint')),
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, address, scope)
);

CREATE TABLE invalid_addresses (
    tenant_id     uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    address       text NOT NULL,
    hard_bounces  integer NOT NULL DEFAULT 0,
    listed        boolean NOT NULL DEFAULT false,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, address)
);

DO $$
DECLARE t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['messages', 'events', 'send_requests', 'quota_usage', 'suppressions', 'invalid_addresses'] LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
        EXECUTE format('CREATE POLICY tenant_isolation ON %I USING (tenant_id = herald_current_tenant() OR herald_is_system()) WITH CHECK (tenant_id = herald_current_tenant() OR herald_is_system())', t);
    END LOOP;
END $$;
