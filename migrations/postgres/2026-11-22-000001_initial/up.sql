-- Portable schema: ids are text (UUIDs made in Rust), times are UTC timestamps,
-- enumerations are text guarded by CHECK constraints.

CREATE TABLE organisations (
    id TEXT PRIMARY KEY NOT NULL,
    slug TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    reference_prefix TEXT NOT NULL,
    timezone TEXT NOT NULL DEFAULT 'Europe/London',
    secretary_email TEXT NOT NULL,
    appeal_window_days INTEGER NOT NULL DEFAULT 28 CHECK (appeal_window_days BETWEEN 1 AND 365),
    response_days INTEGER NOT NULL DEFAULT 5 CHECK (response_days BETWEEN 1 AND 365),
    escalation_window_days INTEGER NOT NULL DEFAULT 28 CHECK (escalation_window_days BETWEEN 1 AND 365),
    committee_target_days INTEGER NOT NULL DEFAULT 28 CHECK (committee_target_days BETWEEN 1 AND 365),
    created_at TIMESTAMP NOT NULL
);

CREATE TABLE users (
    id TEXT PRIMARY KEY NOT NULL,
    email TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    password_hash TEXT,
    created_at TIMESTAMP NOT NULL
);

CREATE TABLE memberships (
    id TEXT PRIMARY KEY NOT NULL,
    user_id TEXT NOT NULL REFERENCES users (id),
    organisation_id TEXT NOT NULL REFERENCES organisations (id),
    role TEXT NOT NULL CHECK (role IN ('admin', 'moderator', 'secretary', 'committee')),
    created_at TIMESTAMP NOT NULL,
    UNIQUE (user_id, organisation_id, role)
);

CREATE TABLE api_tokens (
    id TEXT PRIMARY KEY NOT NULL,
    user_id TEXT NOT NULL REFERENCES users (id),
    organisation_id TEXT NOT NULL REFERENCES organisations (id),
    token_hash TEXT NOT NULL UNIQUE,
    label TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    last_used_at TIMESTAMP,
    revoked_at TIMESTAMP
);

CREATE TABLE policy_rules (
    id TEXT PRIMARY KEY NOT NULL,
    organisation_id TEXT NOT NULL REFERENCES organisations (id),
    code TEXT NOT NULL,
    title TEXT NOT NULL,
    summary TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    UNIQUE (organisation_id, code)
);

CREATE TABLE cases (
    id TEXT PRIMARY KEY NOT NULL,
    organisation_id TEXT NOT NULL REFERENCES organisations (id),
    reference TEXT NOT NULL UNIQUE,
    ref_year INTEGER NOT NULL,
    ref_number INTEGER NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('removal', 'complaint')),
    state TEXT NOT NULL CHECK (state IN (
        'notice_sent', 'appeal_lodged', 'reinstated', 'appeal_rejected', 'closed_no_appeal',
        'complaint_received', 'content_removed', 'no_action',
        'escalated', 'decided', 'withdrawn', 'closed')),
    overdue BOOLEAN NOT NULL DEFAULT FALSE,
    due_at TIMESTAMP,
    due_kind TEXT CHECK (due_kind IN ('appeal_window', 'response', 'escalation_window', 'committee_target')),
    platform TEXT NOT NULL,
    content_url TEXT NOT NULL,
    content_text TEXT NOT NULL,
    author_name TEXT,
    author_email TEXT,
    explanation TEXT NOT NULL,
    cited_rules TEXT NOT NULL,
    notice_method TEXT,
    reporter_name TEXT,
    reporter_email TEXT,
    recorded_by TEXT REFERENCES users (id),
    outcome TEXT CHECK (outcome IN ('reinstate', 'uphold', 'remove', 'no_action')),
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    closed_at TIMESTAMP,
    UNIQUE (organisation_id, ref_year, ref_number),
    CHECK ((due_at IS NULL) = (due_kind IS NULL))
);
CREATE INDEX cases_org_state ON cases (organisation_id, state);
CREATE INDEX cases_due ON cases (due_at);

CREATE TABLE case_tokens (
    id TEXT PRIMARY KEY NOT NULL,
    case_id TEXT NOT NULL REFERENCES cases (id),
    party TEXT NOT NULL CHECK (party IN ('poster', 'reporter')),
    token_hash TEXT NOT NULL UNIQUE,
    created_at TIMESTAMP NOT NULL,
    revoked_at TIMESTAMP
);

CREATE TABLE case_events (
    id TEXT PRIMARY KEY NOT NULL,
    case_id TEXT NOT NULL REFERENCES cases (id),
    seq INTEGER NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN (
        'removal_recorded', 'complaint_received', 'appeal_lodged', 'response_given',
        'marked_overdue', 'escalated', 'decision_recorded', 'withdrawn', 'window_expired')),
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

-- The timeline is the organisation's record: it is never changed, only added to.
CREATE FUNCTION case_events_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'case events are append-only';
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER case_events_no_change BEFORE UPDATE OR DELETE ON case_events
    FOR EACH ROW EXECUTE FUNCTION case_events_append_only();

CREATE TABLE outbox (
    id TEXT PRIMARY KEY NOT NULL,
    organisation_id TEXT NOT NULL REFERENCES organisations (id),
    case_id TEXT REFERENCES cases (id),
    event_id TEXT REFERENCES case_events (id),
    template TEXT NOT NULL,
    recipient_kind TEXT NOT NULL CHECK (recipient_kind IN ('poster', 'reporter', 'secretary', 'moderator')),
    to_address TEXT NOT NULL,
    subject TEXT NOT NULL,
    body_text TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('pending', 'sending', 'sent', 'failed', 'cancelled')),
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    next_attempt_at TIMESTAMP NOT NULL,
    locked_until TIMESTAMP,
    created_at TIMESTAMP NOT NULL,
    sent_at TIMESTAMP
);
CREATE INDEX outbox_due ON outbox (status, next_attempt_at);
CREATE INDEX outbox_case ON outbox (case_id);
