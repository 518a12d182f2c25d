-- Browsers that have signed in to an account: sign-in throttling per account spares them, so
-- an attacker guessing a password cannot lock the real user out.
CREATE TABLE trusted_devices (
    token_hash TEXT PRIMARY KEY NOT NULL,
    user_id TEXT NOT NULL REFERENCES users (id),
    created_at TIMESTAMP NOT NULL
);
CREATE INDEX trusted_devices_user ON trusted_devices (user_id);

-- Internal notes and reissued private links are events of their own. SQLite cannot change a
-- CHECK constraint, so the table is rebuilt as in the calendars migration.
PRAGMA defer_foreign_keys = ON;
DROP TRIGGER case_events_no_update;
DROP TRIGGER case_events_no_delete;
CREATE TABLE case_events_new (
    id TEXT PRIMARY KEY NOT NULL,
    case_id TEXT NOT NULL REFERENCES cases (id),
    seq INTEGER NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN (
        'removal_recorded', 'complaint_received', 'appeal_lodged', 'response_given',
        'marked_overdue', 'escalated', 'decision_recorded', 'withdrawn', 'window_expired',
        'info_requested', 'info_provided', 'info_window_expired', 'reminder_sent',
        'note_added', 'link_reissued')),
    from_state TEXT,
    to_state TEXT NOT NULL,
    actor_kind TEXT NOT NULL CHECK (actor_kind IN ('poster', 'reporter', 'staff', 'system')),
    actor_user_id TEXT REFERENCES users (id),
    actor_role TEXT,
    outcome TEXT,
    body TEXT,
    created_at TIMESTAMP NOT NULL,
    UNIQUE (case_id, seq)
);
INSERT INTO case_events_new SELECT * FROM case_events;
DROP TABLE case_events;
ALTER TABLE case_events_new RENAME TO case_events;
CREATE TRIGGER case_events_no_update BEFORE UPDATE ON case_events
BEGIN
    SELECT RAISE(ABORT, 'case events are append-only');
END;
CREATE TRIGGER case_events_no_delete BEFORE DELETE ON case_events
BEGIN
    SELECT RAISE(ABORT, 'case events are append-only');
END;

-- The email whose sending minted a private link (none for links shown once on a page): links
-- are minted only as an email is sent, so the outbox never holds one. No foreign key, so that
-- an import may write tokens before the emails they came with.
ALTER TABLE case_tokens ADD COLUMN outbox_id TEXT;

-- Who issued an API token (an admin's user id; none when issued from the command line): a
-- token acts in its holder's name, so the list of tokens says who made each.
ALTER TABLE api_tokens ADD COLUMN created_by TEXT REFERENCES users (id);
