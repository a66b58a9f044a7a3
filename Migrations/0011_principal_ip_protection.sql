-- The per-request principal lookup also answers the tenant's IP protection, so that a send needs no
-- second round trip for it (the result type changes, hence DROP and CREATE).
DROP FUNCTION herald_principal(uuid, uuid, text);
CREATE FUNCTION herald_principal(p_tenant uuid, p_user uuid, p_key text)
RETURNS TABLE (o_status text, o_enabled boolean, o_is_root boolean, o_policies text[], o_ip_enabled boolean, o_ip_allow text[])
LANGUAGE plpgsql VOLATILE SECURITY INVOKER
AS $$
BEGIN
    PERFORM set_config('herald.tenant_id', p_tenant::text, true);
    RETURN QUERY
        SELECT t.status, u.enabled, u.is_root,
               coalesce((SELECT array_agg(up.policy_name || E'\t' || coalesce(p.document::text, ''))
                         FROM user_policies up
                         LEFT JOIN policies p ON p.tenant_id = up.tenant_id AND p.name = up.policy_name
                         WHERE up.tenant_id = u.tenant_id AND up.user_id = u.id), '{}'),
               coalesce(ip.enabled, false), coalesce(ip.allow, '{}')
        FROM users u
        JOIN tenants t ON t.id = u.tenant_id
        JOIN access_keys k ON k.tenant_id = u.tenant_id AND k.user_id = u.id AND k.id = p_key
        LEFT JOIN ip_protection ip ON ip.tenant_id = u.tenant_id
        WHERE u.tenant_id = p_tenant AND u.id = p_user;
END
$$;
