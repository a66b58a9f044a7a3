-- Sending domains and their DKIM keys.

CREATE TABLE domains (
    id                  uuid PRIMARY KEY,
    tenant_id           uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    name                text NOT NULL CHECK (char_length(name) BETWEEN 3 AND 253 AND name = lower(name)),
    -- pending: never verified; verified: ownership, SPF and DKIM check out; failing: verified once, now not.
    status              text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'verified', 'failing')),
    verification_token  text NOT NULL,
    -- The records' check results: [{purpose, host, selector?, status, found: [...]}], as last checked.
    checks              jsonb NOT NULL DEFAULT '[]',
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now(),
    verified_at         timestamptz,
    last_checked_at     timestamptz,
    -- When the periodic re-verification looks at it next (verified and failing domains only).
    next_check_at       timestamptz,
    UNIQUE (tenant_id, name)
);
CREATE INDEX domains_next_check ON domains (next_check_at) WHERE next_check_at IS NOT NULL;

CREATE TABLE dkim_keys (
    id              uuid PRIMARY KEY,
    tenant_id       uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    domain_id       uuid NOT NULL REFERENCES domains(id) ON DELETE CASCADE,
    selector        text NOT NULL CHECK (selector ~ '^[a-z0-9][a-z0-9-]{0,62}$'),
    bits            integer NOT NULL CHECK (bits IN (1024, 2048)),
    -- SecretBox-sealed DER of the RSA private key; never in clear.
    private_key     bytea NOT NULL,
    public_key      text NOT NULL,
    -- active: signs; pending: a rotation waiting for its record; retired: replaced.
    state           text NOT NULL CHECK (state IN ('active', 'pending', 'retired')),
    created_at      timestamptz NOT NULL DEFAULT now(),
    activated_at    timestamptz,
    retired_at      timestamptz,
    UNIQUE (domain_id, selector)
);
-- One signing key and at most one waiting key per domain.
CREATE UNIQUE INDEX dkim_keys_one_active ON dkim_keys (domain_id) WHERE state = 'active';
CREATE UNIQUE INDEX dkim_keys_one_pending ON dkim_keys (domain_id) WHERE state = 'pending';

DO $$
DECLARE t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['domains', 'dkim_keys'] LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
        EXECUTE format('CREATE POLICY tenant_isolation ON %I USING (tenant_id = herald_current_tenant() OR herald_is_system()) WITH CHECK (tenant_id = herald_current_tenant() OR herald_is_system())', t);
    END LOOP;
END $$;
