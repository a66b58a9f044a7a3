-- A batch task sends exactly what was approved, and never more than its quota.
--
-- Content: the task keeps the approved template's subject and bodies as they were when it was submitted;
-- editing the template afterwards sends the template back to review but never changes a task.
-- Quota: `reserved` is the quota the task holds (the list's size at submission, reserved then), `queued`
-- how many of its messages were queued. Members beyond the reservation (the list grew) are reserved at
-- expansion from that day's quota; what does not fit is dropped with reason `quota_exceeded`.
ALTER TABLE tasks ADD COLUMN subject text, ADD COLUMN html text, ADD COLUMN body_text text,
                  ADD COLUMN reserved integer, ADD COLUMN queued integer NOT NULL DEFAULT 0;

UPDATE tasks t SET subject = tp.subject, html = tp.html, body_text = tp.body_text
FROM templates tp WHERE tp.id = t.template_id;
UPDATE tasks t SET queued = (SELECT count(*) FROM messages m WHERE m.task_id = t.id AND m.status <> 'dropped'), reserved = total;
-- A task not finished whose template is no longer approved (edited since) has no approved content left to
-- send: it ends where it is.
UPDATE tasks t SET status = 'done', subject = coalesce(t.subject, '(template removed)')
WHERE t.status <> 'done'
  AND NOT EXISTS (SELECT 1 FROM templates tp WHERE tp.id = t.template_id AND tp.status = 'approved');
UPDATE tasks SET subject = '(template removed)' WHERE subject IS NULL;

ALTER TABLE tasks ALTER COLUMN subject SET NOT NULL, ALTER COLUMN reserved SET NOT NULL;
