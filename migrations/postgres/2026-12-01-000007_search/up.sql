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
-- The 'simple' configuration: names, addresses and references are not words of a language,
-- so nothing is stemmed or dropped as a stop word.
-- Each row carries its case's organisation and creation time, so that the rows of an
-- organisation are in one index in the order search results are given (newest case first,
-- then the case's id; the rows of one case are next to each other in it). A search either
-- walks that index testing each row's words and stops after a page, or starts from the GIN
-- index when the words match few rows (see src/lists.rs).
CREATE TABLE case_search (
    id BIGSERIAL PRIMARY KEY,
    case_id TEXT NOT NULL REFERENCES cases (id),
    organisation_id TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    doc TSVECTOR NOT NULL
);
CREATE INDEX case_search_doc ON case_search USING GIN (doc);
CREATE INDEX case_search_org_created ON case_search (organisation_id, created_at, case_id);
-- Every foreign key leads an index (tests/query_plans.rs): a case's search rows, by case.
CREATE INDEX case_search_case ON case_search (case_id);

-- The words of a case row.
CREATE FUNCTION case_search_text(c cases) RETURNS TEXT AS $$
DECLARE
    rules TEXT;
BEGIN
    BEGIN
        SELECT string_agg(concat_ws(' ', r->>'code', r->>'title'), ' ') INTO rules
        FROM json_array_elements(c.cited_rules::json) AS r;
    EXCEPTION WHEN others THEN
        rules := NULL;
    END;
    RETURN concat_ws(' ', c.reference, c.author_name, c.author_email, c.reporter_name,
        c.reporter_email, c.platform, c.content_url, c.content_text, c.explanation, rules);
END;
$$ LANGUAGE plpgsql STABLE;

CREATE FUNCTION case_search_add_case() RETURNS trigger AS $$
BEGIN
    INSERT INTO case_search (case_id, organisation_id, created_at, doc)
    VALUES (NEW.id, NEW.organisation_id, NEW.created_at, to_tsvector('simple', case_search_text(NEW)));
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER case_search_case AFTER INSERT ON cases
    FOR EACH ROW EXECUTE FUNCTION case_search_add_case();

CREATE FUNCTION case_search_add_event() RETURNS trigger AS $$
BEGIN
    INSERT INTO case_search (case_id, organisation_id, created_at, doc)
    SELECT NEW.case_id, c.organisation_id, c.created_at, to_tsvector('simple', NEW.body)
    FROM cases c WHERE c.id = NEW.case_id;
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER case_search_event AFTER INSERT ON case_events
    FOR EACH ROW WHEN (NEW.body IS NOT NULL) EXECUTE FUNCTION case_search_add_event();

-- What is already there.
INSERT INTO case_search (case_id, organisation_id, created_at, doc)
SELECT c.id, c.organisation_id, c.created_at, to_tsvector('simple', case_search_text(c)) FROM cases c;
INSERT INTO case_search (case_id, organisation_id, created_at, doc)
SELECT e.case_id, c.organisation_id, c.created_at, to_tsvector('simple', e.body)
FROM case_events e JOIN cases c ON c.id = e.case_id
WHERE e.body IS NOT NULL;
