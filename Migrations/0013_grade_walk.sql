-- The evaluator walks today's figures in (updated_at, tenant_id) order, each batch from where the
-- last one ended: the index matches that order.
DROP INDEX tenant_daily_stats_recent;
CREATE INDEX tenant_daily_stats_walk ON tenant_daily_stats (day, updated_at, tenant_id);
