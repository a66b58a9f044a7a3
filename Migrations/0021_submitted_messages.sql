-- Mail submitted over SMTP is delivered as it was submitted (with its attachments), DKIM-signed, not
-- rebuilt from parts: the message text is kept once per request in message_raw, and its messages (one per
-- recipient) say so with messages.raw.
CREATE TABLE message_raw (
    tenant_id       uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    request_id      uuid NOT NULL,
    raw             bytea NOT NULL,
    created_at      timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, request_id)
);

ALTER TABLE message_raw ENABLE ROW LEVEL SECURITY;
ALTER TABLE message_raw FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON message_raw
    USING (tenant_id = herald_current_tenant() OR herald_is_system())
    WITH CHECK (tenant_id = herald_current_tenant() OR herald_is_system());

ALTER TABLE messages ADD COLUMN raw boolean NOT NULL DEFAULT false;
