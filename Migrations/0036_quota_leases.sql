-- Quota leases (issue #17): a process takes a tenant's daily quota a slice at a time, so that accepting
-- mail no longer writes the tenant's one quota row (which every process's accepting write locked in turn:
-- `ops/bench scale` measured 0.09 sessions waiting for it with one process, 2.07 with four).
--
-- quota_usage.used counts what is committed of the day: messages accepted without a lease (batch tasks,
-- transactions with Idempotency-Keys, the first send of a day) plus every slice granted to a lease, taken
-- or not. quota_leases holds each holder's (process's) slices of a tenant's day: granted (already counted
-- in used) and taken (messages accepted from it). So granting keeps used <= the ceiling, accepting from a
-- lease writes only the holder's own row (taken + n <= granted, checked by the write), and what is really
-- used is used minus what the leases have not taken (herald_quota_used).
--
-- A lease is the database's, not the holder's: anyone holding the quota row's lock may take back what a
-- lease has not taken (herald_quota_reclaim: granted := taken); the holder's next write then finds no room
-- and asks again. Every quota decision made on the locked row reclaims first, so it is exact: a request is
-- refused for quota only when, with every slice handed back, it does not fit. Locks are always taken quota
-- row first, then lease rows (the accepting write, which locks its lease row, locks nothing else).
-- Idle leases (10 s without a write), leases of past days and those of a process that stops are handed back
-- (herald_quota_release, run with every process's heartbeat and at a graceful stop).

CREATE TABLE quota_leases (
    tenant_id   uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    day         date NOT NULL,
    -- The process (herald_processes.id) whose accepting writes take from it.
    holder      uuid NOT NULL,
    granted     integer NOT NULL CHECK (granted >= 0),
    taken       integer NOT NULL DEFAULT 0 CHECK (taken >= 0 AND taken <= granted),
    used_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, day, holder)
);
CREATE INDEX quota_leases_used_at ON quota_leases (used_at);
ALTER TABLE quota_leases ENABLE ROW LEVEL SECURITY;
ALTER TABLE quota_leases FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON quota_leases
    USING (tenant_id = herald_current_tenant() OR herald_is_system())
    WITH CHECK (tenant_id = herald_current_tenant() OR herald_is_system());

-- What is really used of p_tenant's quota on the days p_from..p_until: committed minus what leases hold untaken.
CREATE FUNCTION herald_quota_used(p_tenant uuid, p_from date, p_until date) RETURNS integer LANGUAGE sql STABLE AS $$
    SELECT (coalesce((SELECT sum(u.used) FROM quota_usage u WHERE u.tenant_id = p_tenant AND u.day BETWEEN p_from AND p_until), 0)
          - coalesce((SELECT sum(x.granted - x.taken) FROM quota_leases x WHERE x.tenant_id = p_tenant AND x.day BETWEEN p_from AND p_until), 0))::int
$$;

-- Takes back what the leases of p_tenant's p_day (but p_except's) have not taken, and answers how much. The
-- caller holds the day's quota row locked.
CREATE FUNCTION herald_quota_reclaim(p_tenant uuid, p_day date, p_except uuid) RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    v_freed integer;
BEGIN
    WITH l AS (
        SELECT x.holder, x.granted - x.taken AS unused FROM quota_leases x
        WHERE x.tenant_id = p_tenant AND x.day = p_day AND x.granted > x.taken AND x.holder IS DISTINCT FROM p_except
        ORDER BY x.holder
        FOR UPDATE
    ), r AS (
        UPDATE quota_leases x SET granted = x.taken FROM l
        WHERE x.tenant_id = p_tenant AND x.day = p_day AND x.holder = l.holder
        RETURNING l.unused
    )
    SELECT coalesce(sum(r.unused), 0) INTO v_freed FROM r;
    IF v_freed > 0 THEN
        UPDATE quota_usage u SET used = u.used - v_freed WHERE u.tenant_id = p_tenant AND u.day = p_day;
    END IF;
    RETURN v_freed;
END $$;

-- The quota lock of 0028, exact again with leases: the day's row locked (made if missing), every lease's
-- untaken part handed back, and what is really used today and earlier in the month.
CREATE OR REPLACE FUNCTION herald_lock_quota(p_tenant uuid, p_day date, p_month_start date, OUT used_today int, OUT used_earlier int)
    LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO quota_usage AS q (tenant_id, day, used) VALUES (p_tenant, p_day, 0)
    ON CONFLICT (tenant_id, day) DO UPDATE SET used = q.used;
    PERFORM herald_quota_reclaim(p_tenant, p_day, NULL);
    SELECT u.used INTO used_today FROM quota_usage u WHERE u.tenant_id = p_tenant AND u.day = p_day;
    used_earlier := herald_quota_used(p_tenant, p_month_start, p_day - 1);
END $$;

-- Grants p_holder up to p_want more of p_tenant's p_day while the day's committed usage stays within
-- p_ceiling (QuotaAllocation.ceiling), taking back the other leases' untaken parts first when the free room
-- is less than p_need (what the holder cannot do without); answers what the lease has left to take (NULL:
-- the day has no row yet, which the locked path makes). One statement, which locks the quota row for its
-- own duration only.
CREATE FUNCTION herald_quota_reserve(p_tenant uuid, p_day date, p_holder uuid, p_need integer, p_want integer, p_ceiling integer)
    RETURNS integer
    LANGUAGE plpgsql AS $$
DECLARE
    v_used integer;
    v_got integer;
    v_left integer;
BEGIN
    PERFORM set_config('herald.tenant_id', p_tenant::text, true);
    SELECT u.used INTO v_used FROM quota_usage u WHERE u.tenant_id = p_tenant AND u.day = p_day FOR UPDATE;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    IF v_used + p_need > p_ceiling THEN
        v_used := v_used - herald_quota_reclaim(p_tenant, p_day, p_holder);
    END IF;
    v_got := greatest(0, least(p_want, p_ceiling - v_used));
    IF v_got > 0 THEN
        UPDATE quota_usage u SET used = u.used + v_got WHERE u.tenant_id = p_tenant AND u.day = p_day;
    END IF;
    INSERT INTO quota_leases AS x (tenant_id, day, holder, granted) VALUES (p_tenant, p_day, p_holder, v_got)
    ON CONFLICT (tenant_id, day, holder) DO UPDATE SET granted = x.granted + v_got, used_at = now()
    RETURNING x.granted - x.taken INTO v_left;
    RETURN v_left;
END $$;

-- Hands back, whole, the leases of p_holder (a process that stops) and those without a write for
-- p_idle_seconds (idle, of a past day, or of a process that died): their untaken part leaves the day's
-- committed usage and the rows go. Each tenant's day in turn, its quota row locked first. Answers how many
-- tenant days it went through.
CREATE FUNCTION herald_quota_release(p_holder uuid, p_idle_seconds integer) RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    r record;
    v_count integer := 0;
BEGIN
    FOR r IN SELECT DISTINCT x.tenant_id, x.day FROM quota_leases x
             WHERE x.holder = p_holder OR x.used_at < now() - make_interval(secs => p_idle_seconds)
             ORDER BY x.tenant_id, x.day LOOP
        PERFORM 1 FROM quota_usage u WHERE u.tenant_id = r.tenant_id AND u.day = r.day FOR UPDATE;
        WITH gone AS (
            DELETE FROM quota_leases x
            WHERE x.tenant_id = r.tenant_id AND x.day = r.day
              AND (x.holder = p_holder OR x.used_at < now() - make_interval(secs => p_idle_seconds))
            RETURNING x.granted - x.taken AS unused
        )
        UPDATE quota_usage u SET used = u.used - s.unused
        FROM (SELECT coalesce(sum(gone.unused), 0)::int AS unused FROM gone) s
        WHERE u.tenant_id = r.tenant_id AND u.day = r.day AND s.unused > 0;
        v_count := v_count + 1;
    END LOOP;
    RETURN v_count;
END $$;

-- The accept path's reads (0028) and, for a holder, what its lease of the day has left to take:
--   lease        granted - taken of p_holder's lease of p_day (no row: no lease)
CREATE FUNCTION herald_accept_facts(p_tenant uuid, p_froms text[], p_tags text[], p_addresses text[], p_day date, p_month_start date,
                                    p_lock boolean, p_holder uuid)
    RETURNS TABLE (kind text, a text, b text, c text, d text, e text, f text)
    LANGUAGE plpgsql AS $$
BEGIN
    RETURN QUERY SELECT * FROM herald_accept_facts(p_tenant, p_froms, p_tags, p_addresses, p_day, p_month_start, p_lock);
    RETURN QUERY
    SELECT 'lease', (x.granted - x.taken)::text, NULL, NULL, NULL, NULL, NULL
    FROM quota_leases x WHERE x.tenant_id = p_tenant AND x.day = p_day AND x.holder = p_holder;
END $$;

-- The accepting write of 0032, with the quota taken from the holder's lease when p_quota_leased (only
-- that row is written: taken + p_quota_taken must stay within granted, else nothing is written and it
-- answers false), or from the day's row as before. The previous signature (a process of the previous
-- release during a rolling upgrade) calls this one without a lease.
CREATE FUNCTION herald_accept_write(
    p_tenant uuid,
    p_request_ids uuid[], p_sender_ids uuid[], p_froms text[], p_aliases text[], p_reply_tos text[], p_subjects text[], p_htmls text[],
    p_texts text[], p_headers text[], p_tags text[], p_ats timestamptz[], p_trackings boolean[], p_raws bytea[], p_kinds text[],
    p_priorities integer[], p_unsubscribes boolean[],
    p_quota_update boolean, p_quota_taken integer, p_quota_ceiling integer, p_quota_day date,
    p_ids uuid[], p_ordinals bigint[], p_addresses text[], p_statuses text[], p_reasons text[],
    p_accepted text, p_dropped text, p_quota_leased boolean, p_quota_holder uuid
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
        WHERE p_quota_update AND NOT p_quota_leased AND u.tenant_id = p_tenant AND u.day = p_quota_day
          AND u.used + p_quota_taken <= p_quota_ceiling
        RETURNING 1
    ), l AS (
        UPDATE quota_leases x SET taken = x.taken + p_quota_taken, used_at = now()
        WHERE p_quota_update AND p_quota_leased AND x.tenant_id = p_tenant AND x.day = p_quota_day AND x.holder = p_quota_holder
          AND x.taken + p_quota_taken <= x.granted
        RETURNING 1
    ), ok AS (
        SELECT NOT p_quota_update OR EXISTS (SELECT FROM q) OR EXISTS (SELECT FROM l) AS ok
    ), raw_written AS (
        INSERT INTO message_raw (tenant_id, request_id, raw, created_at)
        SELECT p_tenant, j.request_id, j.raw, j.at FROM j, ok WHERE ok.ok AND octet_length(j.raw) > 0
    ), m AS (
        INSERT INTO messages (id, tenant_id, request_id, kind, priority, sender_id, from_address, from_name, to_address, reply_to, subject,
                              html, body_text, headers, tag, status, reason, next_attempt_at, created_at, updated_at, tracking,
                              unsubscribe_link, raw, expires_on)
        SELECT r.id, p_tenant, j.request_id, j.kind, j.priority, j.sender_id, j.from_address, nullif(j.from_name, ''), r.to_address,
               nullif(j.reply_to, ''), j.subject, nullif(j.html, ''), nullif(j.body_text, ''), j.headers::jsonb, nullif(j.tag, ''),
               r.status, nullif(r.reason, ''), CASE WHEN r.status = 'queued' THEN j.at END, j.at, j.at,
               j.tracking, j.unsubscribe_link, octet_length(j.raw) > 0,
               CASE WHEN r.status <> 'queued' THEN herald_keep_messages(p_tenant) END
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

CREATE OR REPLACE FUNCTION herald_accept_write(
    p_tenant uuid,
    p_request_ids uuid[], p_sender_ids uuid[], p_froms text[], p_aliases text[], p_reply_tos text[], p_subjects text[], p_htmls text[],
    p_texts text[], p_headers text[], p_tags text[], p_ats timestamptz[], p_trackings boolean[], p_raws bytea[], p_kinds text[],
    p_priorities integer[], p_unsubscribes boolean[],
    p_quota_update boolean, p_quota_taken integer, p_quota_ceiling integer, p_quota_day date,
    p_ids uuid[], p_ordinals bigint[], p_addresses text[], p_statuses text[], p_reasons text[],
    p_accepted text, p_dropped text
) RETURNS boolean LANGUAGE sql AS $$
    SELECT herald_accept_write(p_tenant, p_request_ids, p_sender_ids, p_froms, p_aliases, p_reply_tos, p_subjects, p_htmls, p_texts, p_headers,
                               p_tags, p_ats, p_trackings, p_raws, p_kinds, p_priorities, p_unsubscribes,
                               p_quota_update, p_quota_taken, p_quota_ceiling, p_quota_day,
                               p_ids, p_ordinals, p_addresses, p_statuses, p_reasons, p_accepted, p_dropped, false, NULL::uuid)
$$;
