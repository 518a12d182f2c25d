-- The organisation's own log: every change an admin makes to how it works (settings, closure
-- days, policy rules, staff roles, API tokens), with who made it and when. Case steps have
-- their own record (case_events); this is the record of everything around them.
CREATE TABLE org_events (
    id TEXT PRIMARY KEY NOT NULL,
    organisation_id TEXT NOT NULL REFERENCES organisations (id),
    -- None: made from the command line, or by the first-run set-up.
    actor_user_id TEXT REFERENCES users (id),
    -- Made through an API token an admin issued: that admin.
    token_issued_by TEXT REFERENCES users (id),
    kind TEXT NOT NULL,
    -- What the change concerns, in words staff read: a rule's code, a person's address, a
    -- token's label, a date.
    subject TEXT NOT NULL,
    detail TEXT,
    created_at TIMESTAMP NOT NULL
);
-- The log page reads one organisation's newest entries first.
CREATE INDEX org_events_by_org ON org_events (organisation_id, created_at, id);
-- Every foreign key has an index: removing a user checks it.
CREATE INDEX org_events_actor ON org_events (actor_user_id);
CREATE INDEX org_events_token_issuer ON org_events (token_issued_by);
