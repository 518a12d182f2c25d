-- A step taken through an API token is recorded in the name of the token's holder; when an
-- admin issued the token for them, the event also names that admin, so the record shows both
-- the person the token acts for and the person who made acting for them possible.
ALTER TABLE case_events ADD COLUMN token_issued_by TEXT REFERENCES users (id);
-- Every foreign key has an index: removing a user checks it.
CREATE INDEX case_events_token_issuer ON case_events (token_issued_by);
