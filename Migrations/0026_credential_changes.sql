-- SMTP submission keeps a sender's password fingerprint in memory to re-check each MAIL of a logged-in
-- session without a round trip (issue #16), so a changed or cleared password, or a deleted sender,
-- notifies `herald_principal` too (see 0025), and the session's next MAIL reads the database.
CREATE TRIGGER principal_changed AFTER UPDATE ON senders
    FOR EACH ROW WHEN (OLD.smtp_password_hash IS DISTINCT FROM NEW.smtp_password_hash OR OLD.tenant_id IS DISTINCT FROM NEW.tenant_id)
    EXECUTE FUNCTION herald_principal_changed();
CREATE TRIGGER principal_removed AFTER DELETE ON senders
    FOR EACH ROW EXECUTE FUNCTION herald_principal_changed();
