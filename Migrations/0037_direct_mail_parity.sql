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
