-- Open and click tracking: whether a message's HTML gets tracking links (per send: clickTracking), and
-- when it was first opened and first clicked (what makes an event "first", for unique counts).
ALTER TABLE messages ADD COLUMN tracking boolean NOT NULL DEFAULT false;
ALTER TABLE messages ADD COLUMN opened_at timestamptz;
ALTER TABLE messages ADD COLUMN clicked_at timestamptz;
