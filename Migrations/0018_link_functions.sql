-- The public link routes (/u/, /t/o/, /t/c/) in one statement and one round trip each, like the principal
-- lookup (0002): each function sets the row-level-security tenant for its own implicit transaction and
-- then reads and writes under RLS as usual.

-- The recipient of a tenant's message (NULL when there is none).
CREATE FUNCTION herald_link_recipient(p_tenant uuid, p_message uuid) RETURNS text
LANGUAGE plpgsql VOLATILE SECURITY INVOKER
AS $$
DECLARE v_to text;
BEGIN
    PERFORM set_config('herald.tenant_id', p_tenant::text, true);
    SELECT to_address INTO v_to FROM messages WHERE tenant_id = p_tenant AND id = p_message AND kind <> 'system';
    RETURN v_to;
END
$$;

-- Unsubscribes the recipient of the message from p_scope: the suppression (source unsubscribe) and its
-- message.unsubscribed event the first time; nothing on a repeat. No row when the message does not exist.
CREATE FUNCTION herald_unsubscribe(p_tenant uuid, p_message uuid, p_scope text, p_now timestamptz)
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
        VALUES (p_tenant, p_message, 'message.unsubscribed',
                jsonb_strip_nulls(jsonb_build_object('messageId', p_message, 'to', v_to, 'from', v_from, 'scope', p_scope, 'tag', v_tag)), p_now);
    END IF;
    RETURN QUERY SELECT v_to, v_added;
END
$$;

-- An open (p_url NULL) or a click: its event, with first = true on the first of its kind for the message
-- (kept by messages.opened_at / clicked_at). False when the message does not exist.
CREATE FUNCTION herald_track(p_tenant uuid, p_message uuid, p_url text, p_now timestamptz) RETURNS boolean
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
            jsonb_strip_nulls(jsonb_build_object('messageId', p_message, 'to', v_to, 'from', v_from, 'tag', v_tag, 'first', v_first,
                                                 'url', p_url)), p_now);
    RETURN true;
END
$$;
