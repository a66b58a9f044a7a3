-- The accept path's statements: its reads (SendStore.acceptFacts), its write (SendStore.insertMessages)
-- and the quota lock it shares with the batch paths.

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

-- What the accept path reads, in one round trip with its tenant scope (and its quota lock, when asked).
-- Each statement of an accepting transaction costs a round trip (~1.3 ms under `ops/bench send`'s load) plus its
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
-- write (herald_accept_write, below) checks that what was decided from it still fits.
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

-- The accepting write (SendStore.insertMessages): one message per recipient of the admitted requests
-- (queued, or dropped with its reason), its message.accepted / message.dropped event and the quota
-- taken, in one statement — or nothing at all, answering false, when p_quota_update is set and the day's
-- usage plus p_quota_taken would pass p_quota_ceiling (the usage it was decided on was read without a
-- lock; see QuotaAllocation.ceiling). It scopes itself to the tenant, so that it needs no transaction
-- around it: a tenant's single write commits on its own. Per-request values come once per request
-- (p_request_ids … p_unsubscribes) and are joined to the per-recipient ones (p_ids … p_reasons) by
-- ordinal. "None" travels as '' and is stored as NULL.
CREATE FUNCTION herald_accept_write(
    p_tenant uuid,
    p_request_ids uuid[], p_sender_ids uuid[], p_froms text[], p_aliases text[], p_reply_tos text[], p_subjects text[], p_htmls text[],
    p_texts text[], p_headers text[], p_tags text[], p_ats timestamptz[], p_trackings boolean[], p_raws bytea[], p_kinds text[],
    p_priorities integer[], p_unsubscribes boolean[],
    p_quota_update boolean, p_quota_taken integer, p_quota_ceiling integer, p_quota_day date,
    p_ids uuid[], p_ordinals bigint[], p_addresses text[], p_statuses text[], p_reasons text[],
    p_accepted text, p_dropped text
) RETURNS boolean LANGUAGE plpgsql AS $$
DECLARE
    written boolean;
BEGIN
    PERFORM set_config('herald.tenant_id', p_tenant::text, true);
    WITH j AS (
        SELECT * FROM unnest(p_request_ids, p_sender_ids, p_froms, p_aliases, p_reply_tos, p_subjects, p_htmls, p_texts, p_headers, p_tags,
                             p_ats, p_trackings, p_raws, p_kinds, p_priorities, p_unsubscribes)
            WITH ORDINALITY AS j(request_id, sender_id, from_address, from_name, reply_to, subject, html, body_text, headers, tag, at, tracking,
                                 raw, kind, priority, unsubscribe_link, n)
    ), q AS (
        UPDATE quota_usage u SET used = u.used + p_quota_taken
        WHERE p_quota_update AND u.tenant_id = p_tenant AND u.day = p_quota_day AND u.used + p_quota_taken <= p_quota_ceiling
        RETURNING 1
    ), ok AS (
        SELECT NOT p_quota_update OR EXISTS (SELECT FROM q) AS ok
    ), raw_written AS (
        INSERT INTO message_raw (tenant_id, request_id, raw, created_at)
        SELECT p_tenant, j.request_id, j.raw, j.at FROM j, ok WHERE ok.ok AND octet_length(j.raw) > 0
    ), m AS (
        INSERT INTO messages (id, tenant_id, request_id, kind, priority, sender_id, from_address, from_name, to_address, reply_to, subject,
                              html, body_text, headers, tag, status, reason, next_attempt_at, created_at, updated_at, tracking,
                              unsubscribe_link, raw)
        SELECT r.id, p_tenant, j.request_id, j.kind, j.priority, j.sender_id, j.from_address, nullif(j.from_name, ''), r.to_address,
               nullif(j.reply_to, ''), j.subject, nullif(j.html, ''), nullif(j.body_text, ''), j.headers::jsonb, nullif(j.tag, ''),
               r.status, nullif(r.reason, ''), CASE WHEN r.status = 'queued' THEN j.at END, j.at, j.at,
               j.tracking, j.unsubscribe_link, octet_length(j.raw) > 0
        FROM unnest(p_ids, p_ordinals, p_addresses, p_statuses, p_reasons) AS r(id, n, to_address, status, reason)
        JOIN j USING (n) CROSS JOIN ok
        WHERE ok.ok
        RETURNING messages.id, messages.to_address, messages.from_address, messages.status, messages.reason, messages.tag, messages.created_at
    ), e AS (
        INSERT INTO events (tenant_id, message_id, type, data, created_at)
        SELECT p_tenant, m.id, CASE WHEN m.status = 'queued' THEN p_accepted ELSE p_dropped END,
               herald_message_event(m.id, m.to_address, m.from_address, m.tag, p_status => m.status, p_reason => m.reason),
               m.created_at
        FROM m
    )
    SELECT ok.ok INTO written FROM ok;
    RETURN written;
END $$;
