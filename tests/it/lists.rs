//! Paged lists and search: keyset pages give every case exactly once while cases are added and
//! stepped, search finds closed cases by each of their fields (and never another
//! organisation's), bad page links and limits are refused with a message, and on SQLite no
//! list or search query scans the cases or the outbox.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use crate::common::web::{Page, WebClient};
use crate::common::*;
use diesel::prelude::*;
use serde_json::{json, Value};

const PASSWORD: &str = "correct horse battery staple";

fn signed_in(app: &TestApp, email: &str) -> WebClient {
    app.set_password(email, PASSWORD);
    let web = WebClient::new(&app.base_url);
    web.sign_in(email, PASSWORD);
    web
}

/// A removal without an author's address (so no email waits on it); returns its reference.
fn removal(app: &TestApp, token: &str, n: usize) -> String {
    let (status, case) = app.record_removal(
        token,
        json!({ "author_email": null, "content_text": format!("Post number {n}"), "author_name": format!("Author {n}") }),
    );
    assert_eq!(status, 201, "{case}");
    case["reference"].as_str().unwrap().to_string()
}

/// A complaint through the public form, from its own client address; returns its reference.
fn complaint(app: &TestApp, n: usize, fields: &[(&str, &str)]) -> String {
    let web = WebClient::new(&app.base_url);
    web.set_header("X-Forwarded-For", &format!("198.51.100.{}", n % 250 + 1));
    let mut form: BTreeMap<&str, String> = [
        ("platform", "Facebook".to_string()),
        ("content_url", format!("https://facebook.com/penrithclp/posts/c{n}")),
        ("content_text", format!("Reported post {n}")),
        ("rule_code", "3a".into()),
        ("reason", "It insults a volunteer.".into()),
        ("reporter_name", format!("Reporter {n}")),
        ("reporter_email", format!("reporter{n}@reporters.example")),
    ]
    .into_iter()
    .collect();
    for (k, v) in fields {
        form.insert(k, v.to_string());
    }
    let fields: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let page = web.post("/o/penrith/report", &fields);
    assert_eq!(page.status, 201, "{}", page.body);
    let i = page.body.find("PEN-").expect("the reference on the page");
    page.body[i..].chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '-').collect()
}

fn references(list: &Value) -> Vec<String> {
    list["cases"].as_array().unwrap().iter().map(|c| c["reference"].as_str().unwrap().to_string()).collect()
}

/// The case references linked from a staff page, in order.
fn linked_references(page: &Page) -> Vec<String> {
    let links = page.attrs("a[href^='/staff/cases/']", "href");
    links.iter().map(|href| href["/staff/cases/".len()..].to_string()).collect()
}

/// The "Next page" link of a staff page, as a browser would follow it.
fn next_link(page: &Page) -> Option<String> {
    page.attrs("a[rel=next]", "href").into_iter().next()
}

fn assert_exactly_once(seen: &[String], before: &BTreeSet<String>, what: &str) {
    let mut counts: BTreeMap<&String, usize> = BTreeMap::new();
    for r in seen {
        *counts.entry(r).or_default() += 1;
    }
    let twice: Vec<_> = counts.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "{what}: seen more than once: {twice:?}");
    let missing: Vec<_> = before.iter().filter(|r| !counts.contains_key(r)).collect();
    assert!(missing.is_empty(), "{what}: never seen: {missing:?}");
}

#[test]
fn keyset_pages_return_every_case_exactly_once_while_cases_are_added() {
    let app = TestApp::start();
    let cast = app.setup();
    let mut before: BTreeSet<String> = (0..110).map(|n| removal(&app, &cast.moderator, n)).collect();
    let complaints: Vec<String> = (0..8).map(|n| complaint(&app, n, &[])).collect();
    before.extend(complaints.iter().cloned());

    // The API's list, 7 at a time; between pages a case is added and a complaint answered.
    let mut seen = vec![];
    let mut next = Some("/api/v1/cases?limit=7".to_string());
    let mut added = 0;
    while let Some(path) = next {
        let (status, page) = app.api("GET", &path, Some(&cast.secretary), None);
        assert_eq!(status, 200, "{page}");
        let refs = references(&page);
        assert!(refs.len() <= 7);
        seen.extend(refs);
        next = page["next"].as_str().map(str::to_string);
        if let Some(n) = &next {
            assert!(n.starts_with("/api/v1/cases?") && n.contains("limit=7"), "{n}");
        }
        removal(&app, &cast.moderator, 1000 + added);
        if let Some(reference) = complaints.get(added) {
            let (status, body) = app.api(
                "POST",
                &format!("/api/v1/cases/{reference}/response"),
                Some(&cast.moderator),
                Some(&json!({"outcome": "no_action", "reasons": "Within the rules."})),
            );
            assert_eq!(status, 200, "{body}");
        }
        added += 1;
    }
    assert!(added >= 17, "the walk took {added} pages");
    assert_exactly_once(&seen, &before, "the API's list");

    // Newest first, whatever was added during the walk.
    let (_, first) = app.api("GET", "/api/v1/cases?limit=3", Some(&cast.secretary), None);
    let newest = references(&first);
    assert_eq!(newest.len(), 3);
    assert!(first["next"].is_string());
    let (_, with_filters) =
        app.api("GET", "/api/v1/cases?limit=2&kind=removal&state=notice_sent", Some(&cast.secretary), None);
    let n = with_filters["next"].as_str().unwrap();
    assert!(n.contains("kind=removal") && n.contains("state=notice_sent") && n.contains("limit=2"), "{n}");

    // The work queue's own query, 7 at a time, while cases are added.
    let pool = redress::db::connect(&app.database_url, 1).unwrap();
    let mut conn = pool.get().unwrap();
    let org_id: redress::ids::OrgId = {
        use redress::db::schema::organisations;
        organisations::table
            .filter(organisations::slug.eq(ORG))
            .select(organisations::id)
            .first(&mut *conn)
            .unwrap()
    };
    let open_before: BTreeSet<String> = {
        use redress::db::schema::cases;
        cases::table
            .filter(cases::organisation_id.eq(&org_id))
            .filter(cases::closed_at.is_null())
            .select(cases::reference)
            .load::<String>(&mut *conn)
            .unwrap()
            .into_iter()
            .collect()
    };
    let mut seen = vec![];
    let mut cursor = None;
    let mut previous: Option<(u8, Option<chrono::NaiveDateTime>, redress::ids::CaseId)> = None;
    loop {
        let page =
            redress::store::lists::queue_page(&mut conn, &org_id, None, None, cursor.as_ref(), 7).unwrap();
        for c in &page.rows {
            // The queue's order: overdue first, then due soonest, then the id.
            let key = (redress::store::lists::queue_segment(c), c.due_at, c.id.clone());
            if let Some(p) = &previous {
                assert!(*p < key, "out of order: {p:?} then {key:?}");
            }
            previous = Some(key);
            seen.push(c.reference.clone());
        }
        removal(&app, &cast.moderator, 2000 + seen.len());
        match page.next {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    assert_exactly_once(&seen, &open_before, "the work queue's query");

    // The work queue page itself, 50 at a time, following its "Next page" links.
    let web = signed_in(&app, MODERATOR);
    let open_now: BTreeSet<String> = {
        use redress::db::schema::cases;
        cases::table
            .filter(cases::organisation_id.eq(&org_id))
            .filter(cases::closed_at.is_null())
            .select(cases::reference)
            .load::<String>(&mut *conn)
            .unwrap()
            .into_iter()
            .collect()
    };
    let mut seen = vec![];
    let mut next = Some("/staff".to_string());
    let mut pages = 0;
    while let Some(path) = next {
        let page = web.get(&path);
        assert_eq!(page.status, 200, "{}", page.body);
        seen.extend(linked_references(&page));
        next = next_link(&page);
        if pages > 0 {
            assert!(page.has("First page"));
        }
        pages += 1;
        removal(&app, &cast.moderator, 3000 + pages);
    }
    assert!(pages >= 3);
    assert_exactly_once(&seen, &open_now, "the work queue page");
}

#[test]
fn search_finds_closed_cases_by_each_field_and_filters_them() {
    let app = TestApp::start();
    let cast = app.setup();

    // A removal appealed, upheld, escalated and decided.
    let (status, case) = app.record_removal(
        &cast.moderator,
        json!({
            "author_name": "Quentin Zephyrine",
            "author_email": "qz@authors.example",
            "content_text": "The marmalade conspiracy is afoot.",
            "explanation": "A flagrant xylophone of an insult.",
        }),
    );
    assert_eq!(status, 201, "{case}");
    let decided = case["reference"].as_str().unwrap().to_string();
    let link = app.mail_to("qz@authors.example", "your post was removed").link().unwrap();
    let (status, _, _) = app
        .post_form(&format!("{}/appeal", path_of(&link)), &[("appeal", "My appeal mentions a harpsichord.")]);
    assert_eq!(status, 303);
    let (status, body) = app.api(
        "POST",
        &format!("/api/v1/cases/{decided}/response"),
        Some(&cast.moderator),
        Some(&json!({"outcome": "uphold", "reasons": "Upheld under the gazebo principle."})),
    );
    assert_eq!(status, 200, "{body}");
    let answer = app.mail_to("qz@authors.example", "our answer");
    let (status, _, _) = app.post_form(
        &format!("{}/escalate", path_of(&answer.link().unwrap())),
        &[("case_for_committee", "Please look again.")],
    );
    assert_eq!(status, 303);
    let (status, body) = app.api(
        "POST",
        &format!("/api/v1/cases/{decided}/decision"),
        Some(&cast.committee),
        Some(&json!({"outcome": "uphold", "reasons": "The committee cites the periwinkle precedent."})),
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["state"], "decided");

    // A complaint answered, then closed when its escalation window passes.
    let complained = complaint(
        &app,
        1,
        &[
            ("reporter_name", "Ottoline Brackenbury"),
            ("reporter_email", "ottoline@reporters.example"),
            ("content_text", "Words about a wombat."),
            ("reason", "It names the quokka volunteer."),
        ],
    );
    let (status, body) = app.api(
        "POST",
        &format!("/api/v1/cases/{complained}/response"),
        Some(&cast.moderator),
        Some(&json!({"outcome": "no_action", "reasons": "Robust, says the tamarind test."})),
    );
    assert_eq!(status, 200, "{body}");
    let later = chrono::Utc::now() + chrono::Duration::days(60);
    app.cli_ok(&["sweep", "--now", &later.to_rfc3339(), "--no-deliver"]);
    let (_, body) = app.api("GET", &format!("/api/v1/cases/{complained}"), Some(&cast.moderator), None);
    assert_eq!(body["state"], "closed", "{body}");

    // An open case sharing a word, and another organisation's case with the same words.
    let (_, open) =
        app.record_removal(&cast.moderator, json!({ "content_text": "More marmalade, still open." }));
    let open = open["reference"].as_str().unwrap().to_string();
    let (status, theirs) = app.api(
        "POST",
        "/api/v1/removals",
        Some(&cast.outsider),
        Some(&json!({
            "platform": "Facebook", "content_url": "https://facebook.com/w/1",
            "content_text": "The marmalade conspiracy is afoot, wombat.", "author_name": "Quentin Zephyrine",
            "author_email": "qz@authors.example", "rule_codes": ["3a"], "explanation": "xylophone",
        })),
    );
    assert_eq!(status, 201, "{theirs}");
    let theirs = theirs["reference"].as_str().unwrap().to_string();

    let web = signed_in(&app, MODERATOR);
    let search = |q: &str| -> Vec<String> {
        let (status, list) = app.api(
            "GET",
            &format!("/api/v1/cases?q={}", redress::store::lists::url_encode(q)),
            Some(&cast.moderator),
            None,
        );
        assert_eq!(status, 200, "{q}: {list}");
        let api = references(&list);
        let page = web.get(&format!("/staff?q={}", redress::store::lists::url_encode(q)));
        assert_eq!(page.status, 200, "{q}: {}", page.body);
        assert_eq!(linked_references(&page), api, "the page and the API agree on {q:?}");
        assert!(!api.contains(&theirs), "another organisation's case found by {q:?}");
        api
    };
    for (q, case) in [
        (decided.as_str(), &decided),
        ("Quentin", &decided),
        ("zephyrine quentin", &decided),
        ("qz@authors.example", &decided),
        ("marmalade conspiracy", &decided),
        ("xylophone", &decided),
        ("harpsichord", &decided),
        ("gazebo", &decided),
        ("periwinkle precedent", &decided),
        ("Personal attacks", &decided),
        (complained.as_str(), &complained),
        ("Ottoline Brackenbury", &complained),
        ("ottoline@reporters.example", &complained),
        ("wombat", &complained),
        ("quokka", &complained),
        ("tamarind", &complained),
    ] {
        let found = search(q);
        assert!(found.contains(case), "{q:?} should find {case}, found {found:?}");
    }
    assert_eq!(search("marmalade"), vec![open.clone(), decided.clone()], "open and closed, newest first");
    assert!(search("marmalade wombat").is_empty(), "every word must match");
    assert!(search("nosuchwordanywhere").is_empty());

    // Closed cases by how they ended and when.
    let list = |query: &str| -> Vec<String> {
        let (status, list) = app.api("GET", &format!("/api/v1/cases?{query}"), Some(&cast.moderator), None);
        assert_eq!(status, 200, "{query}: {list}");
        references(&list)
    };
    let today = chrono::Utc::now().with_timezone(&chrono_tz::Europe::London).date_naive();
    let closing_day = later.with_timezone(&chrono_tz::Europe::London).date_naive();
    assert_eq!(list("q=marmalade&state=decided"), vec![decided.clone()]);
    assert!(list("q=marmalade&state=closed").is_empty());
    assert_eq!(list(&format!("closed_from={today}&closed_to={today}")), vec![decided.clone()]);
    let on_closing_day = list(&format!("closed_from={closing_day}"));
    assert!(on_closing_day.contains(&complained) && !on_closing_day.contains(&decided));
    assert_eq!(list(&format!("state=closed&closed_to={closing_day}&q=wombat")), vec![complained.clone()]);
    let page = web.get(&format!("/staff?final_state=decided&closed_from={today}&closed_to={today}"));
    assert_eq!(page.status, 200);
    assert_eq!(linked_references(&page), vec![decided.clone()]);
    assert!(page.has("Cases found"));

    // Odd input is words, never query syntax, and never a server error.
    for q in [
        "\"",
        "*",
        "AND",
        "OR",
        "NOT",
        "NEAR(",
        "NEAR(a b)",
        "a\"b",
        "\"unterminated",
        "(",
        ")",
        "^",
        "-",
        "+",
        "col:val",
        "body:marmalade",
        "{body}",
        "'",
        "\\",
        "%",
        "_",
        "&",
        "|",
        "!",
        "<->",
        "ünïcødé 日本語",
        "😀",
        "marmalade*",
        "a AND OR NOT b",
        "'; DROP TABLE cases; --",
    ] {
        let encoded = redress::store::lists::url_encode(q);
        let (status, body) =
            app.api("GET", &format!("/api/v1/cases?q={encoded}"), Some(&cast.moderator), None);
        assert_eq!(status, 200, "{q:?}: {body}");
        let page = web.get(&format!("/staff?q={encoded}"));
        assert_eq!(page.status, 200, "{q:?}: {}", page.body);
    }
    assert!(search("marmalade*").contains(&decided), "a word with punctuation still finds the word");
    let long = "x".repeat(201);
    let (status, body) = app.api("GET", &format!("/api/v1/cases?q={long}"), Some(&cast.moderator), None);
    assert_eq!(status, 422, "{body}");
    assert!(body["fields"]["q"].is_string());
    let page = web.get(&format!("/staff?q={long}"));
    assert_eq!(page.status, 422);
    assert!(page.has("There is a problem") && page.title().starts_with("Error: "));
    let (status, _) = app.api("GET", "/api/v1/cases?q=a%00b", Some(&cast.moderator), None);
    assert_eq!(status, 422);
}

#[test]
fn bad_page_links_and_limits_are_refused_with_a_message() {
    let app = TestApp::start();
    let cast = app.setup();
    // With the author's address, so that each queues an email.
    for _ in 0..3 {
        assert_eq!(app.record_removal(&cast.moderator, json!({})).0, 201);
    }
    let queue_cursor = {
        let (_, page) = app.api("GET", "/api/v1/cases?limit=1", Some(&cast.moderator), None);
        page["next"].as_str().unwrap().split("cursor=").nth(1).unwrap().to_string()
    };
    for (query, field) in [
        ("cursor=zzz", "cursor"),
        ("cursor=00", "cursor"),
        ("cursor=%00", "cursor"),
        (&format!("cursor={}", hex_of("q|0|-|abc")), "cursor"),
        (&format!("cursor={queue_cursor}&closed_from=2026-01-01"), "cursor"),
        ("limit=0", "limit"),
        ("limit=201", "limit"),
        ("limit=-5", "limit"),
        ("limit=ten", "limit"),
        ("closed_from=2026-13-01", "closed_from"),
        ("closed_to=yesterday", "closed_to"),
        ("closed_from=2026-05-02&closed_to=2026-05-01", "closed_to"),
    ] {
        let (status, body) = app.api("GET", &format!("/api/v1/cases?{query}"), Some(&cast.moderator), None);
        assert_eq!(status, 422, "{query}: {body}");
        assert!(body["fields"][field].as_str().is_some_and(|m| !m.is_empty()), "{query}: {body}");
    }
    let (status, body) = app.api("GET", "/api/v1/cases?limit=200", Some(&cast.moderator), None);
    assert_eq!(status, 200, "{body}");
    assert!(body["next"].is_null());

    let web = signed_in(&app, MODERATOR);
    for path in ["/staff?cursor=zzz", "/staff?q=x&cursor=zzz", "/staff?emails=zzz"] {
        let page = web.get(path);
        assert!(page.status < 500, "{path}: {}", page.status);
        assert!(page.has("That page link is out of date"), "{path}: {}", page.body);
    }
    let page = web.get("/staff?closed_from=2026-02-30");
    assert_eq!(page.status, 422);
    assert!(page.has("Enter the first closing date as a date"));
    let committee = signed_in(&app, COMMITTEE);
    let page = committee.get("/staff/committee?cursor=zzz");
    assert_eq!(page.status, 422);
    assert!(page.has("That page link is out of date"));

    // The outbox on the command line, a page at a time.
    let out = app.cli(&["outbox", "list", "--limit", "1"]);
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    let first = String::from_utf8_lossy(&out.stdout).to_string();
    let cursor = stderr.split("--cursor ").nth(1).expect("a cursor for more").trim().to_string();
    let second = app.cli_ok(&["outbox", "list", "--limit", "1", "--cursor", &cursor]);
    assert_eq!(first.lines().count(), 1);
    assert_eq!(second.lines().count(), 1);
    assert_ne!(first, second);
    let out = app.cli(&["outbox", "list", "--cursor", "nonsense"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("cursor"));
}

fn hex_of(s: &str) -> String {
    s.bytes().map(|b| format!("{b:02x}")).collect()
}

#[derive(QueryableByName)]
struct PlanRow {
    #[diesel(sql_type = diesel::sql_types::Text)]
    detail: String,
}

/// Every list and search query, as SQLite would run it: none scans the cases or the outbox.
#[test]
fn no_list_or_search_query_scans_cases_or_the_outbox_on_sqlite() {
    use redress::store::lists::{self, CaseFilter, Cursor, Order, Search};
    let dir = tempfile::tempdir().unwrap();
    let pool = redress::db::connect(&dir.path().join("plans.db").display().to_string(), 1).unwrap();
    let mut conn = pool.get().unwrap();
    let captured = Arc::new(Mutex::new(Vec::<String>::new()));
    {
        let redress::db::DbConnection::Sqlite(sqlite) = &mut *conn else { unreachable!() };
        let sink = captured.clone();
        sqlite.set_instrumentation(move |event: diesel::connection::InstrumentationEvent<'_>| {
            if let diesel::connection::InstrumentationEvent::StartQuery { query, .. } = event {
                sink.lock().unwrap().push(query.to_string());
            }
        });
    }
    let at = Some(chrono::DateTime::from_timestamp(1_800_000_000, 0).unwrap().naive_utc());
    let id = "0b4e7c3a-1d2f-4a5b-8c9d-0e1f2a3b4c5d".to_string();
    let newest = Cursor { order: Order::Newest, segment: 0, at, id: id.clone() };
    let closed = Cursor { order: Order::RecentlyClosed, segment: 0, at, id: id.clone() };
    let outbox = Cursor { order: Order::Outbox, segment: 0, at, id: id.clone() };
    let words = Search::parse("PEN-2026-0001 jo@example.org").unwrap();
    let mut run = |what: &str, f: &mut dyn FnMut(&mut redress::db::DbConnection)| {
        captured.lock().unwrap().clear();
        f(&mut conn);
        let queries: Vec<String> = captured.lock().unwrap().drain(..).collect();
        assert!(!queries.is_empty(), "{what} ran no query");
        for q in queries {
            let sql = q.split(" -- binds:").next().unwrap().to_string();
            let plan: Vec<PlanRow> =
                diesel::sql_query(format!("EXPLAIN QUERY PLAN {sql}")).load(&mut *conn).unwrap();
            let plan: Vec<String> = plan.into_iter().map(|r| r.detail).collect();
            println!("{what}:\n  {sql}\n  -> {}", plan.join("\n  -> "));
            for line in &plan {
                for table in ["cases", "outbox"] {
                    // Reading an index in order from its start is allowed only for a list with
                    // no condition at all, where the limit ends it.
                    let in_order =
                        line.starts_with(&format!("SCAN {table} USING INDEX")) && !sql.contains(" WHERE ");
                    assert!(
                        !line.starts_with(&format!("SCAN {table}")) || in_order,
                        "{what} scans {table}: {line}\n{sql}"
                    );
                }
            }
            // A search newest first reads FTS5's matches in rowid order and stops after the
            // page: no sort of all matches. Only a search of closed cases by date sorts (its
            // matches, counted first and at most 2,000).
            if what != "search of closed cases by date" {
                assert!(
                    !plan.iter().any(|l| l.contains("TEMP B-TREE")),
                    "{what} sorts instead of reading an index in order: {plan:?}"
                );
            }
        }
    };
    let org = &redress::ids::OrgId::from_raw("org");
    for cursor in [None, Some(&newest)] {
        run("API list", &mut |c| {
            lists::cases_page(c, org, &CaseFilter::default(), cursor, 50).unwrap();
        });
        run("API list by state", &mut |c| {
            let f = CaseFilter { state: Some("escalated"), ..Default::default() };
            lists::cases_page(c, org, &f, cursor, 50).unwrap();
        });
        run("API list by overdue", &mut |c| {
            let f = CaseFilter { overdue: Some(true), kind: Some("removal"), ..Default::default() };
            lists::cases_page(c, org, &f, cursor, 50).unwrap();
        });
        run("search", &mut |c| {
            let f = CaseFilter { search: words.clone(), ..Default::default() };
            lists::cases_page(c, org, &f, cursor, 50).unwrap();
        });
    }
    let from = at;
    for cursor in [None, Some(&closed)] {
        run("closed cases by date", &mut |c| {
            let f = CaseFilter {
                state: Some("decided"),
                closed_from: from,
                closed_before: from,
                ..Default::default()
            };
            lists::cases_page(c, org, &f, cursor, 50).unwrap();
        });
        run("search of closed cases by date", &mut |c| {
            let f = CaseFilter { search: words.clone(), closed_from: from, ..Default::default() };
            lists::cases_page(c, org, &f, cursor, 50).unwrap();
        });
    }
    for segment in 0..4u8 {
        let cursor = Cursor {
            order: Order::Queue,
            segment,
            at: if segment % 2 == 0 { at } else { None },
            id: id.clone(),
        };
        run("work queue", &mut |c| {
            lists::queue_page(c, org, None, None, Some(&cursor), 50).unwrap();
        });
        run("work queue by state and kind", &mut |c| {
            lists::queue_page(c, org, Some("appeal_lodged"), Some("removal"), Some(&cursor), 50).unwrap();
        });
        run("committee", &mut |c| {
            lists::queue_page(c, org, Some("escalated"), None, Some(&cursor), 20).unwrap();
        });
    }
    run("work queue counts", &mut |c| {
        lists::queue_counts(c, org, chrono::Utc::now()).unwrap();
    });
    for cursor in [None, Some(&outbox)] {
        for (o, s) in [(None, None), (Some(org), None), (None, Some("failed")), (Some(org), Some("failed"))] {
            run("outbox", &mut |c| {
                lists::outbox_page(c, o, s, cursor, 50).unwrap();
            });
        }
    }
}

/// The bundled SQLite has FTS5, and the search index is filled in the same transaction as the
/// case and its events (rolled back with them), once each.
#[test]
fn the_search_index_follows_cases_and_events_in_their_transaction() {
    let app = TestApp::start();
    let cast = app.setup();
    let reference = removal(&app, &cast.moderator, 1);
    let (status, _) = app.api(
        "POST",
        &format!("/api/v1/cases/{reference}/notes"),
        Some(&cast.moderator),
        Some(&json!({"note": "A note about the capybara."})),
    );
    assert_eq!(status, 201);
    let (_, found) = app.api("GET", "/api/v1/cases?q=capybara", Some(&cast.moderator), None);
    assert_eq!(references(&found), vec![reference.clone()]);
    let pool = redress::db::connect(&app.database_url, 1).unwrap();
    let mut conn = pool.get().unwrap();
    #[derive(QueryableByName)]
    struct N {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    let rows = |conn: &mut redress::db::DbConnection| -> i64 {
        diesel::sql_query("SELECT COUNT(*) AS n FROM case_search").get_result::<N>(conn).unwrap().n
    };
    // One row for each case and one for each event with words: none twice, none missing.
    let expected = diesel::sql_query(
        "SELECT (SELECT COUNT(*) FROM cases) + (SELECT COUNT(*) FROM case_events WHERE body IS NOT NULL) AS n",
    )
    .get_result::<N>(&mut *conn)
    .unwrap()
    .n;
    let before = rows(&mut conn);
    assert_eq!(before, expected);
    // A refused step leaves nothing in the index.
    let (status, _) = app.api(
        "POST",
        &format!("/api/v1/cases/{reference}/response"),
        Some(&cast.moderator),
        Some(&json!({"outcome": "uphold", "reasons": "An ocelot reason."})),
    );
    assert!((400..500).contains(&status));
    assert_eq!(rows(&mut conn), before);
    let (_, found) = app.api("GET", "/api/v1/cases?q=ocelot", Some(&cast.moderator), None);
    assert!(references(&found).is_empty());
}
