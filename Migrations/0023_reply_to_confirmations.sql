-- Reply-to confirmation mails are counted per sender and per tenant over the last hour before another is
-- queued (HERALD_REPLY_TO_CONFIRMATIONS). They are the system messages that carry their sender's id; this
-- index finds them without walking the tenant's ordinary mail of that hour.
CREATE INDEX messages_system_recent ON messages (tenant_id, created_at) WHERE kind = 'system';
