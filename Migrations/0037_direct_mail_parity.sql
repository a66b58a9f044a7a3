-- Direct Mail parity (issue #18).
--
-- A batch send's Reply-To (the sender's confirmed reply-to, with the display name Direct Mail's
-- ReplyAddressAlias gives, as its messages store it) and its open and click tracking (BatchSendMail's
-- ClickTrace; NULL: the tenant's setting), kept with the task for its expansion. Both nullable without a
-- default: no rewrite, and a process of the previous release writes and expands tasks as before.
ALTER TABLE tasks ADD COLUMN reply_to text, ADD COLUMN tracking boolean;

-- Complaints (feedback-loop reports, ARF): the event type message.complained, mirroring EventType in
-- HeraldCore/MessageVocabulary.swift. Only added to: every row the old list allowed, this one allows.
CREATE OR REPLACE FUNCTION herald_event_types() RETURNS text[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT ARRAY['message.accepted', 'message.dropped', 'message.deferred', 'message.delivered', 'message.bounced',
                   'message.spam_rejected', 'message.failed', 'message.opened', 'message.clicked', 'message.unsubscribed',
                   'message.complained', 'account.grade_changed', 'account.frozen', 'account.unfrozen', 'account.banned',
                   'webhook.disabled', 'webhook.test'] $$;

-- The operator's sensitive words (GET/PUT /admin/v1/content-rules), which replace HERALD_SENSITIVE_WORDS once
-- set: one row for the installation. Not a tenant's table (no tenant_id, no row-level security); every
-- process reads it again within seconds of a change.
CREATE TABLE content_rules (
    id              integer PRIMARY KEY CHECK (id = 1),
    sensitive_words text[] NOT NULL,
    updated_at      timestamptz NOT NULL DEFAULT now()
);

-- Every number is configuration: a tenant's own grade -> daily quota table, which the operator sets (NULL: the
-- installation's, HERALD_GRADE_QUOTAS). 16 daily quotas, none below the grade before (QuotaTable checks it too).
ALTER TABLE tenants ADD COLUMN quota_table integer[]
    CHECK (quota_table IS NULL OR (cardinality(quota_table) = 16 AND array_position(quota_table, NULL) IS NULL));

-- The accepting transaction's facts (migration 0028), unchanged but for the tenant row, which now carries the
-- tenant's quota table and limit overrides (its send limits) in the columns that were empty: a process of the
-- previous release reads the same rows and ignores them.
CREATE OR REPLACE FUNCTION herald_accept_facts(p_tenant uuid, p_froms text[], p_tags text[], p_addresses text[], p_day date, p_month_start date,
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
    SELECT 'tenant', t.status, t.grade::text, t.track_opens_clicks::text, t.trigger_unsubscribe_link::text, t.quota_table::text,
           t.limit_overrides::text
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
