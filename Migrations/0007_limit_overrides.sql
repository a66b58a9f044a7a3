-- Per-tenant overrides of the product limits, set by the operator: {"domains": 20, …}.
ALTER TABLE tenants ADD COLUMN limit_overrides jsonb NOT NULL DEFAULT '{}';
