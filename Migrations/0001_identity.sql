-- Tenants, sub-users, AccessKeys, policies, token signing keys, IP protection, audit log.
-- Row-level security: every tenant table is FORCEd, so even the owning role only sees the rows of the
-- tenant named by the transaction-local setting `herald.tenant_id`, or every row when the transaction
-- declared itself a system transaction (`herald.system = 'on'`: operator actions, token exchange, workers).

CREATE FUNCTION herald_current_tenant() RETURNS uuid
    LANGUAGE sql STABLE PARALLEL SAFE
    AS $$ SELECT nullif(current_setting('herald.tenant_id', true), '')::uuid $$;

CREATE FUNCTION herald_is_system() RETURNS boolean
    LANGUAGE sql STABLE PARALLEL SAFE
    AS $$ SELECT coalesce(current_setting('herald.system', true), '') = 'on' $$;

CREATE TABLE tenants (
    id             uuid PRIMARY KEY,
    name           text NOT NULL CHECK (char_length(name) BETWEEN 1 AND 128),
    kind           text NOT NULL DEFAULT 'enterprise' CHECK (kind IN ('enterprise', 'personal')),
    status         text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'frozen', 'banned')),
    grade          smallint NOT NULL DEFAULT 2 CHECK (grade BETWEEN 1 AND 16),
    grade_ceiling  smallint NOT NULL DEFAULT 10 CHECK (grade_ceiling BETWEEN 9 AND 16),
    freeze_count   integer NOT NULL DEFAULT 0,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now()
);
-- The tenant row is the tenant's own: its tenant_id is its id.
ALTER TABLE tenants ENABLE ROW LEVEL SECURITY;
ALTER TABLE tenants FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON tenants
    USING (id = herald_current_tenant() OR herald_is_system())
    WITH CHECK (id = herald_current_tenant() OR herald_is_system());

CREATE TABLE users (
    id          uuid PRIMARY KEY,
    tenant_id   uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    name        text NOT NULL CHECK (char_length(name) BETWEEN 1 AND 64),
    is_root     boolean NOT NULL DEFAULT false,
    enabled     boolean NOT NULL DEFAULT true,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, name)
);
CREATE UNIQUE INDEX users_one_root ON users (tenant_id) WHERE is_root;

CREATE TABLE access_keys (
    id                 text PRIMARY KEY,
    tenant_id          uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    user_id            uuid NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    -- SecretBox envelope (AES-256-GCM data key wrapped by a key derived from HERALD_MASTER_KEY).
    secret_ciphertext  bytea NOT NULL,
    status             text NOT NULL DEFAULT 'active' CHECK (status IN ('active')),
    created_at         timestamptz NOT NULL DEFAULT now(),
    last_used_at       timestamptz
);
CREATE INDEX access_keys_user ON access_keys (tenant_id, user_id);

CREATE TABLE policies (
    tenant_id    uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    name         text NOT NULL CHECK (name ~ '^[A-Za-z0-9-]{1,128}$'),
    description  text NOT NULL DEFAULT '',
    document     jsonb NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, name)
);

-- Attachments name either a built-in policy (FullAccess, ReadOnlyAccess; not stored) or a custom one.
CREATE TABLE user_policies (
    tenant_id    uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    user_id      uuid NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    policy_name  text NOT NULL,
    policy_type  text NOT NULL CHECK (policy_type IN ('System', 'Custom')),
    attached_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, policy_name)
);
CREATE INDEX user_policies_policy ON user_policies (tenant_id, policy_name);

CREATE TABLE ip_protection (
    tenant_id   uuid PRIMARY KEY REFERENCES tenants(id) ON DELETE CASCADE,
    enabled     boolean NOT NULL DEFAULT false,
    allow       text[] NOT NULL DEFAULT '{}',
    updated_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE audit_log (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id       uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    at              timestamptz NOT NULL DEFAULT now(),
    actor_type      text NOT NULL CHECK (actor_type IN ('user', 'operator', 'system')),
    user_id         uuid,
    access_key_id   text,
    source_ip       text,
    action          text NOT NULL,
    resource        text NOT NULL,
    result          text NOT NULL,
    request_id      text,
    detail          jsonb
);
CREATE INDEX audit_log_tenant ON audit_log (tenant_id, id DESC);

-- Token signing keys are the service's own, not a tenant's: no tenant_id, and not readable through tenant transactions.
CREATE TABLE signing_keys (
    kid                  text PRIMARY KEY,
    algorithm            text NOT NULL CHECK (algorithm = 'EdDSA'),
    public_key           bytea NOT NULL,
    private_ciphertext   bytea NOT NULL,
    created_at           timestamptz NOT NULL DEFAULT now(),
    -- Set when a newer key takes over; the key stays published until its last token has expired.
    retired_at           timestamptz
);
ALTER TABLE signing_keys ENABLE ROW LEVEL SECURITY;
ALTER TABLE signing_keys FORCE ROW LEVEL SECURITY;
CREATE POLICY system_only ON signing_keys USING (herald_is_system()) WITH CHECK (herald_is_system());

DO $$
DECLARE t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['users', 'access_keys', 'policies', 'user_policies', 'ip_protection', 'audit_log'] LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
        EXECUTE format('CREATE POLICY tenant_isolation ON %I USING (tenant_id = herald_current_tenant() OR herald_is_system()) WITH CHECK (tenant_id = herald_current_tenant() OR herald_is_system())', t);
    END LOOP;
END $$;
