-- Batch sends: a task expands an approved template over a recipient list, in chunks, resumably.

CREATE TABLE tasks (
    id              uuid PRIMARY KEY,
    tenant_id       uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    template_id     uuid NOT NULL,
    list_id         uuid NOT NULL,
    sender_id       uuid NOT NULL,
    from_address    text NOT NULL,
    tag             text,
    -- scheduled → expanding → done
    status          text NOT NULL CHECK (status IN ('scheduled', 'expanding', 'done')),
    total           integer NOT NULL,
    expanded        integer NOT NULL DEFAULT 0,
    -- Resume point: members are expanded in address order after this one.
    last_address    text,
    scheduled_at    timestamptz NOT NULL,
    locked_until    timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX tasks_due ON tasks (scheduled_at) WHERE status <> 'done';

ALTER TABLE messages ADD COLUMN task_id uuid;
CREATE INDEX messages_task ON messages (task_id) WHERE task_id IS NOT NULL;

ALTER TABLE tasks ENABLE ROW LEVEL SECURITY;
ALTER TABLE tasks FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON tasks
    USING (tenant_id = herald_current_tenant() OR herald_is_system())
    WITH CHECK (tenant_id = herald_current_tenant() OR herald_is_system());
