-- Working-day calendars per nation, reminders, alerts recorded once, and pausing the clock.

ALTER TABLE organisations ADD COLUMN nation TEXT NOT NULL DEFAULT 'england-and-wales'
    CHECK (nation IN ('england-and-wales', 'scotland', 'northern-ireland'));
ALTER TABLE organisations ADD COLUMN appeal_window_count TEXT NOT NULL DEFAULT 'calendar'
    CHECK (appeal_window_count IN ('calendar', 'working'));
ALTER TABLE organisations ADD COLUMN response_count TEXT NOT NULL DEFAULT 'working'
    CHECK (response_count IN ('calendar', 'working'));
ALTER TABLE organisations ADD COLUMN escalation_window_count TEXT NOT NULL DEFAULT 'calendar'
    CHECK (escalation_window_count IN ('calendar', 'working'));
ALTER TABLE organisations ADD COLUMN committee_target_count TEXT NOT NULL DEFAULT 'calendar'
    CHECK (committee_target_count IN ('calendar', 'working'));
-- Working days before the deadline; 0 switches the reminder off.
ALTER TABLE organisations ADD COLUMN response_reminder_days INTEGER NOT NULL DEFAULT 1
    CHECK (response_reminder_days BETWEEN 0 AND 30);
ALTER TABLE organisations ADD COLUMN committee_reminder_days INTEGER NOT NULL DEFAULT 2
    CHECK (committee_reminder_days BETWEEN 0 AND 30);
-- How long a poster or reporter has to answer a request for more information, counted like
-- the response clock.
ALTER TABLE organisations ADD COLUMN info_answer_days INTEGER NOT NULL DEFAULT 5
    CHECK (info_answer_days BETWEEN 1 AND 365);

-- A paused response clock: the counted days it had left, and when the request for more
-- information runs out.
ALTER TABLE cases ADD COLUMN paused_days_left INTEGER;
ALTER TABLE cases ADD COLUMN info_due_at TIMESTAMP;

-- Days that do not count: one-off bank holidays of a nation (a royal funeral, a coronation)
-- or an organisation's own closure days.
CREATE TABLE closed_days (
    id TEXT PRIMARY KEY NOT NULL,
    nation TEXT CHECK (nation IN ('england-and-wales', 'scotland', 'northern-ireland')),
    organisation_id TEXT REFERENCES organisations (id),
    day DATE NOT NULL,
    title TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    CHECK ((nation IS NULL) <> (organisation_id IS NULL))
);
CREATE UNIQUE INDEX closed_days_nation_day ON closed_days (nation, day) WHERE nation IS NOT NULL;
CREATE UNIQUE INDEX closed_days_org_day ON closed_days (organisation_id, day) WHERE organisation_id IS NOT NULL;

-- Every reminder and overdue alert, against the case and the deadline it belongs to: the
-- unique key is what makes each one go out once, however many sweeps run.
CREATE TABLE case_alerts (
    id TEXT PRIMARY KEY NOT NULL,
    case_id TEXT NOT NULL REFERENCES cases (id),
    kind TEXT NOT NULL CHECK (kind IN ('response_reminder', 'response_overdue', 'committee_reminder', 'committee_overdue')),
    due_at TIMESTAMP NOT NULL,
    created_at TIMESTAMP NOT NULL,
    UNIQUE (case_id, kind, due_at)
);

-- New kinds of event.
ALTER TABLE case_events DROP CONSTRAINT case_events_kind_check;
ALTER TABLE case_events ADD CONSTRAINT case_events_kind_check CHECK (kind IN (
    'removal_recorded', 'complaint_received', 'appeal_lodged', 'response_given',
    'marked_overdue', 'escalated', 'decision_recorded', 'withdrawn', 'window_expired',
    'info_requested', 'info_provided', 'info_window_expired', 'reminder_sent'));
