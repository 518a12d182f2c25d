-- Paged lists and search.
--
-- Each list is read a page at a time in a fixed order with a unique tie-break (the id), so a
-- page is a range of one index, never a scan or a sort of all cases.

-- The API's list: newest first, optionally one state or overdue or not.
CREATE INDEX cases_org_created ON cases (organisation_id, created_at, id);
CREATE INDEX cases_org_state_created ON cases (organisation_id, state, created_at, id);
CREATE INDEX cases_org_overdue_created ON cases (organisation_id, overdue, created_at, id);
-- Closed cases by the date they closed.
CREATE INDEX cases_org_closed ON cases (organisation_id, closed_at, id) WHERE closed_at IS NOT NULL;
-- The work queue and the committee's view: open cases, overdue first, then due soonest. Only
-- open cases are in these (closed_at is set exactly when a case reaches a final state).
CREATE INDEX cases_open_queue ON cases (organisation_id, overdue, due_at, id) WHERE closed_at IS NULL;
CREATE INDEX cases_open_state ON cases (organisation_id, state, overdue, due_at, id) WHERE closed_at IS NULL;

-- The outbox, newest first, for everyone or one organisation, in one status or any.
CREATE INDEX outbox_created ON outbox (created_at, id);
CREATE INDEX outbox_status_created ON outbox (status, created_at, id);
CREATE INDEX outbox_org_created ON outbox (organisation_id, created_at, id);
CREATE INDEX outbox_org_status_created ON outbox (organisation_id, status, created_at, id);

-- Staff search: one row for each case (its reference, the names and addresses of the author
-- and the reporter, the content, the explanation and the rules cited) and one for each event
-- with words (appeals, responses, decisions and their reasons, questions, answers, notes).
-- Rows are added by triggers in the transaction that adds the case or the event; nothing
-- changes these fields afterwards (the timeline is append-only), so nothing is ever updated.
-- A migration that rebuilds cases or case_events must create these triggers again, and one that
-- rebuilds cases must keep each case's rowid.
--
-- The rowid of a row is its case's rowid times 2^20, plus 1, 2, ... for the case's events: the
-- rows of one case are next to each other, and cases are in the order they were recorded. FTS5
-- reads a word's matches in rowid order, newest case first, so a search stops after a page
-- however many cases match (see src/lists.rs).
CREATE VIRTUAL TABLE case_search USING fts5(
    case_id UNINDEXED,
    organisation_id UNINDEXED,
    body,
    tokenize = 'unicode61 remove_diacritics 2'
);

CREATE TRIGGER case_search_case AFTER INSERT ON cases
BEGIN
    INSERT INTO case_search (rowid, case_id, organisation_id, body) VALUES (
        new.rowid * 1048576,
        new.id,
        new.organisation_id,
        new.reference || ' ' || coalesce(new.author_name, '') || ' ' || coalesce(new.author_email, '')
            || ' ' || coalesce(new.reporter_name, '') || ' ' || coalesce(new.reporter_email, '')
            || ' ' || new.platform || ' ' || new.content_url || ' ' || new.content_text
            || ' ' || new.explanation || ' '
            || coalesce((SELECT group_concat(json_extract(r.value, '$.code') || ' ' || json_extract(r.value, '$.title'), ' ')
                         FROM json_each(CASE WHEN json_valid(new.cited_rules) THEN new.cited_rules ELSE '[]' END) AS r), '')
    );
END;

CREATE TRIGGER case_search_event AFTER INSERT ON case_events WHEN new.body IS NOT NULL
BEGIN
    INSERT INTO case_search (rowid, case_id, organisation_id, body)
    SELECT (SELECT max(s.rowid) + 1 FROM case_search s
            WHERE s.rowid BETWEEN c.rowid * 1048576 AND c.rowid * 1048576 + 1048575),
        new.case_id, c.organisation_id, new.body
    FROM cases c WHERE c.id = new.case_id;
END;

-- What is already there.
INSERT INTO case_search (rowid, case_id, organisation_id, body)
SELECT c.rowid * 1048576, c.id, c.organisation_id,
    c.reference || ' ' || coalesce(c.author_name, '') || ' ' || coalesce(c.author_email, '')
        || ' ' || coalesce(c.reporter_name, '') || ' ' || coalesce(c.reporter_email, '')
        || ' ' || c.platform || ' ' || c.content_url || ' ' || c.content_text
        || ' ' || c.explanation || ' '
        || coalesce((SELECT group_concat(json_extract(r.value, '$.code') || ' ' || json_extract(r.value, '$.title'), ' ')
                     FROM json_each(CASE WHEN json_valid(c.cited_rules) THEN c.cited_rules ELSE '[]' END) AS r), '')
FROM cases c;
INSERT INTO case_search (rowid, case_id, organisation_id, body)
SELECT c.rowid * 1048576
        + row_number() OVER (PARTITION BY e.case_id ORDER BY e.seq, e.created_at, e.id),
    e.case_id, c.organisation_id, e.body
FROM case_events e JOIN cases c ON c.id = e.case_id
WHERE e.body IS NOT NULL;
