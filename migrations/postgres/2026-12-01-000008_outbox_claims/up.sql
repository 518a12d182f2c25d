-- Each claim of an email carries an id of its own: a worker records "sent" or "failed" only
-- while the row still holds its claim, so a worker whose lease ran out cannot overwrite the
-- state that the next one set.
ALTER TABLE outbox ADD COLUMN claim_id TEXT;
-- When the current claim began sending. A row found "sending" after its lease ran out may have
-- reached the mail server already: it is sent again with the same Message-ID, and the log says so.
ALTER TABLE outbox ADD COLUMN sending_since TIMESTAMP;
-- Claims whose lease ran out, found without reading the rest of the outbox.
CREATE INDEX outbox_lease ON outbox (status, locked_until);
-- Cases the deadline sweep could not act on, one row per case while it keeps failing: the
-- sweep goes on with every other case, and the organisation's admins are told once.
CREATE TABLE sweep_failures (
    case_id TEXT PRIMARY KEY NOT NULL REFERENCES cases (id),
    organisation_id TEXT NOT NULL REFERENCES organisations (id),
    error TEXT NOT NULL,
    failures INTEGER NOT NULL,
    first_at TIMESTAMP NOT NULL,
    last_at TIMESTAMP NOT NULL
);
CREATE INDEX sweep_failures_org ON sweep_failures (organisation_id, first_at);
