-- Reclaiming messages whose worker died: rows still 'sending' after their lease.
CREATE INDEX messages_leased ON messages (locked_until) WHERE status = 'sending';
