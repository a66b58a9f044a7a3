-- Tenant settings for mail: open and click tracking by default (a send's clickTracking overrides it), and
-- the one-click unsubscribe link on trigger mail too (batch mail always has it). A message remembers
-- whether it gets the link, decided when it is accepted.
ALTER TABLE tenants ADD COLUMN track_opens_clicks boolean NOT NULL DEFAULT false;
ALTER TABLE tenants ADD COLUMN trigger_unsubscribe_link boolean NOT NULL DEFAULT false;
ALTER TABLE messages ADD COLUMN unsubscribe_link boolean NOT NULL DEFAULT false;
