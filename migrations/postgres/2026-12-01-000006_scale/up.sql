-- Every foreign key's child column gets an index. Without one, a change to a parent key (or
-- its deletion) makes the database read the whole child table to check it, and a lookup by
-- the parent reads it all as well: the cost of a step grew with every email ever queued.
CREATE INDEX memberships_org ON memberships (organisation_id);
CREATE INDEX api_tokens_user ON api_tokens (user_id);
CREATE INDEX api_tokens_org ON api_tokens (organisation_id);
CREATE INDEX api_tokens_created_by ON api_tokens (created_by);
CREATE INDEX cases_recorded_by ON cases (recorded_by);
CREATE INDEX case_tokens_case ON case_tokens (case_id);
CREATE INDEX case_tokens_outbox ON case_tokens (outbox_id);
CREATE INDEX case_events_actor ON case_events (actor_user_id);
CREATE INDEX outbox_org ON outbox (organisation_id);
CREATE INDEX outbox_event ON outbox (event_id);
CREATE INDEX sessions_org ON sessions (organisation_id);
CREATE INDEX closed_days_org ON closed_days (organisation_id);

-- The sweep reads only what is due. Deadlines not yet marked overdue, answers to a request
-- for more information, and the instant of each case's next reminder each have an index that
-- holds only the cases they concern.
CREATE INDEX cases_deadline ON cases (due_at) WHERE NOT overdue;
CREATE INDEX cases_info_due ON cases (info_due_at) WHERE info_due_at IS NOT NULL;
ALTER TABLE cases ADD COLUMN next_reminder_at TIMESTAMP;
CREATE INDEX cases_reminder ON cases (next_reminder_at) WHERE next_reminder_at IS NOT NULL;
-- Open cases that may still need a reminder are looked at once by the next sweep, which
-- works out the exact instant in the organisation's calendar.
UPDATE cases SET next_reminder_at = updated_at
WHERE closed_at IS NULL AND NOT overdue AND due_kind IN ('response', 'committee_target');
