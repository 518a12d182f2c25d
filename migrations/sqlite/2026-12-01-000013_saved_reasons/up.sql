-- Reasons an organisation writes once and offers on every form that needs them: for a
-- removal's explanation, an answer to an appeal or a complaint, or a committee decision.
CREATE TABLE saved_reasons (
    id TEXT PRIMARY KEY NOT NULL,
    organisation_id TEXT NOT NULL REFERENCES organisations (id),
    step TEXT NOT NULL CHECK (step IN ('removal', 'appeal_response', 'complaint_response', 'decision')),
    title TEXT NOT NULL,
    body TEXT NOT NULL,
    -- The policy rules it goes with, as codes separated by spaces; empty for none.
    rule_codes TEXT NOT NULL DEFAULT '',
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);
-- Each form lists one organisation's reasons for its step, by title.
CREATE INDEX saved_reasons_by_org ON saved_reasons (organisation_id, step, title);
