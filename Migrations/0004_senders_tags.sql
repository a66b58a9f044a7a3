-- Sender addresses, their monthly deletion budget, and tags.

CREATE TABLE senders (
    id                  uuid PRIMARY KEY,
    tenant_id           uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    -- A domain with senders cannot be deleted (the API answers Domain.InUse); NO ACTION, so that a
    -- tenant's cascade removes both.
    domain_id           uuid NOT NULL REFERENCES domains(id),
    address             text NOT NULL CHECK (char_length(address) BETWEEN 3 AND 254 AND address = lower(address)),
    type                text NOT NULL CHECK (type IN ('trigger', 'batch')),
    reply_to            text CHECK (reply_to IS NULL OR char_length(reply_to) BETWEEN 3 AND 254),
    -- none: no reply-to; pending: confirmation link sent, not clicked; verified.
    reply_to_status     text NOT NULL DEFAULT 'none' CHECK (reply_to_status IN ('none', 'pending', 'verified')),
    -- Changes with every new reply-to, so that an older confirmation link stops working.
    reply_to_nonce      text,
    -- scrypt$N$r$p$salt$hash (base64); never the password.
    smtp_password_hash  text,
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, address)
);
CREATE INDEX senders_domain ON senders (domain_id);

-- Deletions of sender addresses per tenant and calendar month (UTC), for the monthly limit.
CREATE TABLE sender_deletions (
    tenant_id   uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    month       date NOT NULL,
    count       integer NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant_id, month)
);

CREATE TABLE tags (
    id          uuid PRIMARY KEY,
    tenant_id   uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    name        text NOT NULL CHECK (name ~ '^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$'),
    created_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, name)
);

DO $$
DECLARE t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['senders', 'sender_deletions', 'tags'] LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
        EXECUTE format('CREATE POLICY tenant_isolation ON %I USING (tenant_id = herald_current_tenant() OR herald_is_system()) WITH CHECK (tenant_id = herald_current_tenant() OR herald_is_system())', t);
    END LOOP;
END $$;
