DROP INDEX case_events_token_issuer;
ALTER TABLE case_events DROP COLUMN token_issued_by;
