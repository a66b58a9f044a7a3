-- Processes keep principals in memory (a token's user, its key, policies, the tenant's IP protection and
-- account status: what herald_principal reads) and drop a tenant's principals the moment any of that
-- changes: every such change notifies the channel `herald_principal` with the tenant's id (issue #16).
-- PostgreSQL delivers a notification at commit to every session listening, and folds identical ones
-- within a transaction. Changes that no principal reads (a key's last use, a tenant's grade) notify nobody.
CREATE FUNCTION herald_principal_changed() RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        PERFORM pg_notify('herald_principal', OLD.tenant_id::text);
    ELSE
        PERFORM pg_notify('herald_principal', NEW.tenant_id::text);
        IF TG_OP = 'UPDATE' AND OLD.tenant_id IS DISTINCT FROM NEW.tenant_id THEN
            PERFORM pg_notify('herald_principal', OLD.tenant_id::text);
        END IF;
    END IF;
    RETURN NULL;
END
$$;

-- The tenants table is keyed by id (its tenant_id).
CREATE FUNCTION herald_tenant_principals_changed() RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
    PERFORM pg_notify('herald_principal', (CASE WHEN TG_OP = 'DELETE' THEN OLD.id ELSE NEW.id END)::text);
    RETURN NULL;
END
$$;

CREATE TRIGGER principal_changed AFTER UPDATE OF status ON tenants
    FOR EACH ROW WHEN (OLD.status IS DISTINCT FROM NEW.status) EXECUTE FUNCTION herald_tenant_principals_changed();
CREATE TRIGGER principal_removed AFTER DELETE ON tenants
    FOR EACH ROW EXECUTE FUNCTION herald_tenant_principals_changed();

CREATE TRIGGER principal_changed AFTER UPDATE ON users
    FOR EACH ROW WHEN (OLD.enabled IS DISTINCT FROM NEW.enabled OR OLD.is_root IS DISTINCT FROM NEW.is_root
                       OR OLD.tenant_id IS DISTINCT FROM NEW.tenant_id)
    EXECUTE FUNCTION herald_principal_changed();
CREATE TRIGGER principal_removed AFTER DELETE ON users
    FOR EACH ROW EXECUTE FUNCTION herald_principal_changed();

CREATE TRIGGER principal_changed AFTER UPDATE ON access_keys
    FOR EACH ROW WHEN (OLD.user_id IS DISTINCT FROM NEW.user_id OR OLD.status IS DISTINCT FROM NEW.status
                       OR OLD.tenant_id IS DISTINCT FROM NEW.tenant_id)
    EXECUTE FUNCTION herald_principal_changed();
CREATE TRIGGER principal_removed AFTER DELETE ON access_keys
    FOR EACH ROW EXECUTE FUNCTION herald_principal_changed();

CREATE TRIGGER principal_changed AFTER INSERT OR UPDATE OR DELETE ON policies
    FOR EACH ROW EXECUTE FUNCTION herald_principal_changed();
CREATE TRIGGER principal_changed AFTER INSERT OR UPDATE OR DELETE ON user_policies
    FOR EACH ROW EXECUTE FUNCTION herald_principal_changed();
CREATE TRIGGER principal_changed AFTER INSERT OR UPDATE OR DELETE ON ip_protection
    FOR EACH ROW EXECUTE FUNCTION herald_principal_changed();
