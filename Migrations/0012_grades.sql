-- Credit grades (SPEC §5): per-tenant daily delivery figures kept incrementally (updated in the same
-- transaction as each delivery result), the evaluation bookkeeping on the tenant, and the history of
-- every grade change, freeze, unfreeze and ban with its reason and figures.

CREATE TABLE tenant_daily_stats (
    tenant_id   uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    -- The day in the quota time zone.
    day         date NOT NULL,
    -- Messages that reached a final outcome that day, and of them:
    sent        integer NOT NULL DEFAULT 0,
    delivered   integer NOT NULL DEFAULT 0,
    -- hard bounces for a bad mailbox or domain (5.1.x),
    invalid     integer NOT NULL DEFAULT 0,
    -- spam rejections (and, when they arrive, complaints).
    spam        integer NOT NULL DEFAULT 0,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, day)
);
-- The evaluator's work list: today's rows that changed since their tenant was last evaluated.
CREATE INDEX tenant_daily_stats_recent ON tenant_daily_stats (day, updated_at);

ALTER TABLE tenants
    ADD COLUMN graded_at         timestamptz,
    -- Automatic promotions on promotions_day (the cap counts a day's).
    ADD COLUMN promotions_day    date,
    ADD COLUMN promotions_count  integer NOT NULL DEFAULT 0,
    ADD COLUMN demoted_day       date,
    -- The operator's manual grade change: at most once a day.
    ADD COLUMN manual_grade_day  date;

CREATE TABLE grade_history (
    id          bigserial PRIMARY KEY,
    tenant_id   uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    -- promoted, demoted, frozen, unfrozen, banned, set (by the operator)
    change      text NOT NULL CHECK (change IN ('promoted', 'demoted', 'frozen', 'unfrozen', 'banned', 'set')),
    from_grade  smallint NOT NULL,
    to_grade    smallint NOT NULL,
    reason      text NOT NULL,
    figures     jsonb NOT NULL DEFAULT '{}',
    -- system (the evaluator) or operator
    actor       text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX grade_history_tenant ON grade_history (tenant_id, id);

DO $$
DECLARE t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['tenant_daily_stats', 'grade_history'] LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
        EXECUTE format('CREATE POLICY tenant_isolation ON %I USING (tenant_id = herald_current_tenant() OR herald_is_system()) WITH CHECK (tenant_id = herald_current_tenant() OR herald_is_system())', t);
    END LOOP;
END
$$;

-- A frozen tenant's mail waits as 'paused' (not claimed, not dropped) until it is unfrozen.
ALTER TABLE messages DROP CONSTRAINT messages_status_check;
ALTER TABLE messages ADD CONSTRAINT messages_status_check
    CHECK (status IN ('queued', 'deferred', 'sending', 'delivered', 'bounced', 'spam_rejected', 'failed', 'dropped', 'paused'));
