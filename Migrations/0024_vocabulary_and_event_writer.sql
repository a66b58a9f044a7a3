-- One vocabulary and one event writer (issue #15).
--
-- The message statuses and the event types, each listed once in SQL, mirroring the Swift enums
-- MessageStatus and EventType (HeraldCore/MessageVocabulary.swift; a test keeps them equal). The
-- columns stay text, so every query reads and compares them as before; the CHECK constraints take
-- their lists from these functions.
CREATE FUNCTION herald_message_statuses() RETURNS text[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT ARRAY['queued', 'deferred', 'sending', 'delivered', 'bounced', 'spam_rejected', 'failed', 'dropped', 'paused'] $$;

CREATE FUNCTION herald_event_types() RETURNS text[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT ARRAY['message.accepted', 'message.dropped', 'message.deferred', 'message.delivered', 'message.bounced',
                   'message.spam_rejected', 'message.failed', 'message.opened', 'message.clicked', 'message.unsubscribed',
                   'account.grade_changed', 'account.frozen', 'account.unfrozen', 'account.banned', 'webhook.disabled',
                   'webhook.test'] $$;

ALTER TABLE messages DROP CONSTRAINT messages_status_check;
ALTER TABLE messages ADD CONSTRAINT messages_status_check CHECK (status = ANY (herald_message_statuses()));
ALTER TABLE events ADD CONSTRAINT events_type_check CHECK (type = ANY (herald_event_types()));

-- The payload (`data`) of every message.* event, which the webhook sends as it is: a public contract
-- (components.schemas.MessageEventData in OpenAPI/openapi.yaml, checked by a test). Absent values are
-- left out, never sent as null. Every statement that writes a message event builds its data here; an
-- SQL function of one SELECT is inlined into the statement that calls it.
CREATE FUNCTION herald_message_event(
    p_message uuid, p_to text, p_from text, p_tag text,
    p_status text DEFAULT NULL, p_reason text DEFAULT NULL, p_smtp_response text DEFAULT NULL, p_attempts integer DEFAULT NULL,
    p_late boolean DEFAULT NULL, p_task uuid DEFAULT NULL, p_scope text DEFAULT NULL, p_first boolean DEFAULT NULL, p_url text DEFAULT NULL
) RETURNS jsonb
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
    SELECT jsonb_strip_nulls(jsonb_build_object(
        'messageId', p_message, 'to', p_to, 'from', p_from, 'tag', p_tag,
        'status', p_status, 'reason', p_reason, 'smtpResponse', p_smtp_response, 'attempts', p_attempts,
        'late', p_late, 'taskId', p_task, 'scope', p_scope, 'first', p_first, 'url', p_url))
$$;

-- The unsubscribe and tracking functions of 0018, unchanged but for their events' data, which now come
-- from the one writer.
CREATE OR REPLACE FUNCTION herald_unsubscribe(p_tenant uuid, p_message uuid, p_scope text, p_now timestamptz)
RETURNS TABLE (o_address text, o_added boolean)
LANGUAGE plpgsql VOLATILE SECURITY INVOKER
AS $$
DECLARE v_to text; v_from text; v_tag text; v_added boolean;
BEGIN
    PERFORM set_config('herald.tenant_id', p_tenant::text, true);
    SELECT to_address, from_address, tag INTO v_to, v_from, v_tag
    FROM messages WHERE tenant_id = p_tenant AND id = p_message AND kind <> 'system';
    IF NOT FOUND THEN
        RETURN;
    END IF;
    INSERT INTO suppressions (tenant_id, address, scope, source, created_at)
    VALUES (p_tenant, lower(v_to), p_scope, 'unsubscribe', p_now)
    ON CONFLICT DO NOTHING;
    v_added := FOUND;
    IF v_added THEN
        INSERT INTO events (tenant_id, message_id, type, data, created_at)
        VALUES (p_tenant, p_message, 'message.unsubscribed', herald_message_event(p_message, v_to, v_from, v_tag, p_scope => p_scope), p_now);
    END IF;
    RETURN QUERY SELECT v_to, v_added;
END
$$;

CREATE OR REPLACE FUNCTION herald_track(p_tenant uuid, p_message uuid, p_url text, p_now timestamptz) RETURNS boolean
LANGUAGE plpgsql VOLATILE SECURITY INVOKER
AS $$
DECLARE v_to text; v_from text; v_tag text; v_first boolean;
BEGIN
    PERFORM set_config('herald.tenant_id', p_tenant::text, true);
    SELECT to_address, from_address, tag, CASE WHEN p_url IS NULL THEN opened_at IS NULL ELSE clicked_at IS NULL END
    INTO v_to, v_from, v_tag, v_first
    FROM messages WHERE tenant_id = p_tenant AND id = p_message AND kind <> 'system'
    FOR UPDATE;
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    IF v_first THEN
        IF p_url IS NULL THEN
            UPDATE messages SET opened_at = p_now WHERE tenant_id = p_tenant AND id = p_message;
        ELSE
            UPDATE messages SET clicked_at = p_now WHERE tenant_id = p_tenant AND id = p_message;
        END IF;
    END IF;
    INSERT INTO events (tenant_id, message_id, type, data, created_at)
    VALUES (p_tenant, p_message, CASE WHEN p_url IS NULL THEN 'message.opened' ELSE 'message.clicked' END,
            herald_message_event(p_message, v_to, v_from, v_tag, p_first => v_first, p_url => p_url), p_now);
    RETURN true;
END
$$;
