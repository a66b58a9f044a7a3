-- Signature nonces of the Direct Mail compatibility endpoint (SPEC §9): a signed request whose
-- SignatureNonce (V2) or x-acs-signature-nonce (V3) was seen before for the same AccessKey is refused.
-- Requests older than 15 minutes are refused by their timestamp, so a nonce need be kept only 30 minutes
-- (both sides of the allowed clock skew); herald_use_nonce prunes the tenant's older ones as it goes.
CREATE TABLE api_nonces (
    tenant_id       uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    access_key_id   text NOT NULL,
    nonce           text NOT NULL,
    seen_at         timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, access_key_id, nonce)
);
CREATE INDEX api_nonces_seen ON api_nonces (tenant_id, seen_at);

ALTER TABLE api_nonces ENABLE ROW LEVEL SECURITY;
ALTER TABLE api_nonces FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON api_nonces
    USING (tenant_id = herald_current_tenant() OR herald_is_system())
    WITH CHECK (tenant_id = herald_current_tenant() OR herald_is_system());

-- True when the nonce is new (and now recorded), false when it was used before.
CREATE FUNCTION herald_use_nonce(p_tenant uuid, p_key text, p_nonce text, p_now timestamptz) RETURNS boolean
LANGUAGE plpgsql VOLATILE SECURITY INVOKER
AS $$
BEGIN
    PERFORM set_config('herald.tenant_id', p_tenant::text, true);
    DELETE FROM api_nonces WHERE tenant_id = p_tenant AND seen_at < p_now - interval '30 minutes';
    INSERT INTO api_nonces (tenant_id, access_key_id, nonce, seen_at) VALUES (p_tenant, p_key, p_nonce, p_now)
    ON CONFLICT DO NOTHING;
    RETURN FOUND;
END
$$;
