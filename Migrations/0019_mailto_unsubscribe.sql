-- The mailto: form of List-Unsubscribe: its token names only the message (the address's local part has
-- room for no more), so the tenant and the scope come from the message, the scope exactly as its https
-- link has it: the batch task's list for batch mail, the whole tenant otherwise. The lookup by message id
-- runs as a system read for this one statement; the unsubscription itself runs under the tenant, through
-- herald_unsubscribe (0018). No row when the message does not exist.
CREATE FUNCTION herald_unsubscribe_message(p_message uuid, p_now timestamptz)
RETURNS TABLE (o_address text, o_added boolean)
LANGUAGE plpgsql VOLATILE SECURITY INVOKER
AS $$
DECLARE v_tenant uuid; v_scope text;
BEGIN
    PERFORM set_config('herald.system', 'on', true);
    SELECT m.tenant_id, CASE WHEN m.kind = 'batch' AND t.list_id IS NOT NULL THEN 'list:' || t.list_id::text ELSE '*' END
    INTO v_tenant, v_scope
    FROM messages m LEFT JOIN tasks t ON t.tenant_id = m.tenant_id AND t.id = m.task_id
    WHERE m.id = p_message AND m.kind <> 'system';
    PERFORM set_config('herald.system', 'off', true);
    IF v_tenant IS NULL THEN
        RETURN;
    END IF;
    RETURN QUERY SELECT u.o_address, u.o_added FROM herald_unsubscribe(v_tenant, p_message, v_scope, p_now) u;
END
$$;
