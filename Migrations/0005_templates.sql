-- Templates and their review.

CREATE TABLE templates (
    id              uuid PRIMARY KEY,
    tenant_id       uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    name            text NOT NULL CHECK (char_length(name) BETWEEN 1 AND 64),
    kind            text NOT NULL CHECK (kind IN ('trigger', 'batch')),
    subject         text NOT NULL CHECK (char_length(subject) BETWEEN 1 AND 100),
    html            text CHECK (html IS NULL OR octet_length(html) <= 81920),
    body_text       text CHECK (body_text IS NULL OR octet_length(body_text) <= 81920),
    variables       text[] NOT NULL DEFAULT '{}',
    -- draft → pending (submitted, awaiting the operator) → approved | rejected; an edit returns an
    -- approved template to pending and a rejected one to draft.
    status          text NOT NULL DEFAULT 'draft' CHECK (status IN ('draft', 'pending', 'approved', 'rejected')),
    -- Why it was rejected (automatic checks or the operator).
    review_reasons  text[] NOT NULL DEFAULT '{}',
    submitted_at    timestamptz,
    reviewed_at     timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, name)
);
CREATE INDEX templates_pending ON templates (submitted_at) WHERE status = 'pending';

ALTER TABLE templates ENABLE ROW LEVEL SECURITY;
ALTER TABLE templates FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON templates
    USING (tenant_id = herald_current_tenant() OR herald_is_system())
    WITH CHECK (tenant_id = herald_current_tenant() OR herald_is_system());
