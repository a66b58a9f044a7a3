-- The accepting transaction's reads (SendStore.acceptFacts and the batch paths' quota).

-- A tenant's quota row of p_day, created if missing and locked (FOR UPDATE, by the upsert) until the
-- transaction ends: its usage that day and in the days of its month before it (from p_month_start).
CREATE FUNCTION herald_lock_quota(p_tenant uuid, p_day date, p_month_start date, OUT used_today int, OUT used_earlier int)
    LANGUAGE sql AS $$
    WITH locked AS (
        INSERT INTO quota_usage AS q (tenant_id, day, used) VALUES (p_tenant, p_day, 0)
        ON CONFLICT (tenant_id, day) DO UPDATE SET used = q.used
        RETURNING q.used
    )
    SELECT locked.used, (SELECT coalesce(sum(u.used), 0)::int FROM quota_usage u
                         WHERE u.tenant_id = p_tenant AND u.day >= p_month_start AND u.day < p_day)
    FROM locked
$$;

-- What the accepting transaction reads, in one round trip with its tenant scope (and its quota lock, when asked).
-- Each statement of that transaction costs a round trip (~1.3 ms under `ops/bench send`'s load) plus its
-- parse and plan, against ~0.03 ms of execution for each of these reads; as a function its plans are
-- cached in the session too. It reads and locks; it decides nothing (AcceptDecision does, in Swift).
--
-- Rows (kind, a, b, c, d, e, f):
--   tenant       status, grade, track_opens_clicks, trigger_unsubscribe_link
--   sender       address, id, type, reply_to, reply_to_status, domain status    (of p_froms)
--   tag          name                                                            (of p_tags)
--   suppression  address, scope, source                                          (of p_addresses)
--   invalid      address                                                         (of p_addresses, listed)
--   quota        used on p_day (NULL: no row yet), used earlier in its month (from p_month_start)
-- With p_lock, the tenant's quota row of p_day is created if missing and locked until the transaction
-- ends (herald_lock_quota; a caller that also claims Idempotency-Keys claims them first, so that
-- accepting transactions take their locks in one order). Without it the row is read as it is, and the
-- writing statement checks that what was decided from it still fits (see InsertMessagesStatement).
CREATE FUNCTION herald_accept_facts(p_tenant uuid, p_froms text[], p_tags text[], p_addresses text[], p_day date, p_month_start date,
                                    p_lock boolean)
    RETURNS TABLE (kind text, a text, b text, c text, d text, e text, f text)
    LANGUAGE plpgsql AS $$
BEGIN
    PERFORM set_config('herald.tenant_id', p_tenant::text, true);
    IF p_lock AND EXISTS (SELECT FROM tenants t WHERE t.id = p_tenant) THEN
        RETURN QUERY
        SELECT 'quota', l.used_today::text, l.used_earlier::text, NULL, NULL, NULL, NULL
        FROM herald_lock_quota(p_tenant, p_day, p_month_start) l;
    ELSE
        RETURN QUERY
        SELECT 'quota', (SELECT u.used::text FROM quota_usage u WHERE u.tenant_id = p_tenant AND u.day = p_day),
               (SELECT coalesce(sum(u.used), 0)::text FROM quota_usage u
                WHERE u.tenant_id = p_tenant AND u.day >= p_month_start AND u.day < p_day),
               NULL, NULL, NULL, NULL;
    END IF;
    RETURN QUERY
    SELECT 'tenant', t.status, t.grade::text, t.track_opens_clicks::text, t.trigger_unsubscribe_link::text, NULL::text, NULL::text
    FROM tenants t WHERE t.id = p_tenant
    UNION ALL
    SELECT 'sender', s.address, s.id::text, s.type, s.reply_to, s.reply_to_status, dm.status
    FROM senders s JOIN domains dm ON dm.id = s.domain_id WHERE s.tenant_id = p_tenant AND s.address = ANY (p_froms)
    UNION ALL
    SELECT 'tag', g.name, NULL, NULL, NULL, NULL, NULL FROM tags g WHERE g.tenant_id = p_tenant AND g.name = ANY (p_tags)
    UNION ALL
    SELECT 'suppression', x.address, x.scope, x.source, NULL, NULL, NULL
    FROM suppressions x WHERE x.tenant_id = p_tenant AND x.address = ANY (p_addresses)
    UNION ALL
    SELECT 'invalid', i.address, NULL, NULL, NULL, NULL, NULL
    FROM invalid_addresses i WHERE i.tenant_id = p_tenant AND i.listed AND i.address = ANY (p_addresses);
END $$;
