-- Recipient lists and their members.

CREATE TABLE recipient_lists (
    id              uuid PRIMARY KEY,
    tenant_id       uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    name            text NOT NULL CHECK (char_length(name) BETWEEN 1 AND 64),
    alias           text CHECK (alias IS NULL OR char_length(alias) <= 64),
    description     text CHECK (description IS NULL OR char_length(description) <= 500),
    -- Kept in the importing transaction, so limits never need a count over the members.
    member_count    integer NOT NULL DEFAULT 0 CHECK (member_count >= 0),
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, name)
);

CREATE TABLE list_members (
    list_id     uuid NOT NULL REFERENCES recipient_lists(id) ON DELETE CASCADE,
    tenant_id   uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    address     text NOT NULL CHECK (char_length(address) BETWEEN 3 AND 254 AND address = lower(address)),
    variables   jsonb NOT NULL DEFAULT '{}',
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (list_id, address)
);

DO $$
DECLARE t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['recipient_lists', 'list_members'] LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
        EXECUTE format('CREATE POLICY tenant_isolation ON %I USING (tenant_id = herald_current_tenant() OR herald_is_system()) WITH CHECK (tenant_id = herald_current_tenant() OR herald_is_system())', t);
    END LOOP;
END $$;
