-- Multipart email: the HTML body stored beside the text one, as rendered when queued.
ALTER TABLE outbox ADD COLUMN body_html TEXT;
