//! Moving an organisation from a SQLite file into another database (PostgreSQL when
//! TEST_DATABASE_URL is set, another SQLite file otherwise): every case, event and email
//! identical after the move, the counts printed and checked.

use crate::common::*;
use serde_json::json;

#[test]
fn export_and_import_move_the_whole_history() {
    let app = TestApp::start_on_sqlite();
    let cast = app.setup();
    // Some history: a removal taken to the committee and decided, a complaint, a reminder.
    let (_, case) = app.record_removal(&cast.moderator, json!({}));
    let reference = case["reference"].as_str().unwrap().to_string();
    let link = app.mail_to("pat@poster.example", "your post was removed").link().unwrap();
    app.post_form(&format!("{}/appeal", path_of(&link)), &[("appeal", "Please.")]);
    app.api(
        "POST",
        &format!("/api/v1/cases/{reference}/response"),
        Some(&cast.moderator),
        Some(&json!({"outcome": "uphold", "reasons": "No."})),
    );
    let answer = app.mail_to("pat@poster.example", "our answer");
    app.post_form(
        &format!("{}/escalate", path_of(&answer.link().unwrap())),
        &[("case_for_committee", "Yes.")],
    );
    app.api(
        "POST",
        &format!("/api/v1/cases/{reference}/decision"),
        Some(&cast.committee),
        Some(&json!({"outcome": "reinstate", "reasons": "Fair."})),
    );
    app.post_form(
        "/o/penrith/report",
        &[
            ("platform", "X"),
            ("content_url", "https://x.com/p/1"),
            ("reason", "Spam."),
            ("reporter_name", "Robin"),
            ("reporter_email", "robin@reporter.example"),
        ],
    );
    app.cli_ok(&["closure", "add", "--org", ORG, "--date", "2026-12-24", "--title", "Christmas Eve"]);
    // A moderator who records a case and then leaves, and a token an admin issued on the web:
    // the history still names them, so the move must carry their accounts.
    let mod2_token = app.cli_ok(&["token", "add", "--org", ORG, "--email", MODERATOR2]).trim().to_string();
    let (status, _) = app.record_removal(&mod2_token, json!({"author_email": "sam@poster.example"}));
    assert_eq!(status, 201);
    let out = app.cli_with_stdin(&["user", "password", "--email", ADMIN], Some("a long admin passphrase"));
    assert!(out.status.success());
    let admin = crate::common::web::WebClient::new(&app.base_url);
    admin.sign_in(ADMIN, "a long admin passphrase");
    let page = admin.submit(
        "/staff/admin/tokens",
        "/staff/admin/tokens",
        &[("email", MODERATOR), ("label", "script")],
    );
    assert_eq!(page.status, 201, "{}", page.body);
    let mod2_id: String = {
        use diesel::prelude::*;
        use redress::db::schema::users;
        let pool = redress::db::connect(&app.database_url, 1).unwrap();
        let mut conn = pool.get().unwrap();
        users::table.filter(users::email.eq(MODERATOR2)).select(users::id).first(&mut *conn).unwrap()
    };
    let page = admin.submit(
        "/staff/admin/users",
        &format!("/staff/admin/users/{mod2_id}/remove-role"),
        &[("role", "moderator")],
    );
    assert_eq!(page.status, 303, "{}", page.body);
    // The organisation's own words: a saved reason, the public note, the accessibility statement.
    for (path, fields) in [
        (
            "/staff/admin/reasons",
            vec![
                ("step", "removal"),
                ("title", "Insult"),
                ("body", "It insults a member."),
                ("rule_codes", "3a"),
            ],
        ),
        ("/staff/admin/public-note", vec![("text", "Removed under {rules}: {procedure}")]),
        ("/staff/admin/accessibility", vec![("text", "Our own statement.")]),
    ] {
        assert_eq!(admin.submit(path, path, &fields).status, 303, "{path}");
    }
    app.wait_outbox_settled();

    let file = app.dir.path().join("penrith.json");
    let out = app.cli(&["export", "--org", ORG, "--output", file.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("exported penrith: 5 users, 3 cases"), "{said}");

    // The target: a fresh database.
    let target_dir = tempfile::tempdir().unwrap();
    let pg = fresh_postgres_database();
    let target_url = match &pg {
        Some((url, _, _)) => url.clone(),
        None => target_dir.path().join("target.db").display().to_string(),
    };
    let run = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_redress"))
            .args(args)
            .env("DATABASE_URL", &target_url)
            .env("RUST_LOG", "warn")
            .output()
            .unwrap()
    };
    let out = run(&["import", "--input", file.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(
        report.contains("imported penrith: 5 users, 3 cases") && report.contains("counts checked"),
        "{report}"
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("rows"), "a progress bar");

    // Identical: exporting again from the target gives the same document, row for row.
    let again = target_dir.path().join("again.json");
    let out = run(&["export", "--org", ORG, "--output", again.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let before: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    let after: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&again).unwrap()).unwrap();
    for table in [
        "cases",
        "case_events",
        "outbox",
        "case_tokens",
        "memberships",
        "policy_rules",
        "users",
        "closed_days",
        "api_tokens",
    ] {
        assert_eq!(before[table], after[table], "{table} differs after the move");
    }
    assert_eq!(before, after);
    assert!(before["case_events"].as_array().unwrap().len() >= 6);
    assert_eq!(before["saved_reasons"].as_array().unwrap().len(), 1);
    assert_eq!(before["organisation"]["public_note"], "Removed under {rules}: {procedure}");
    assert_eq!(before["organisation"]["accessibility_statement"], "Our own statement.");

    // The imported organisation works there: the calculator reads its settings and closure.
    let out = run(&["deadline", "--org", ORG, "--kind", "response", "--from", "2026-12-23T10:00:00Z"]);
    assert!(out.status.success());
    // Importing twice is refused, and changes nothing.
    let out = run(&["import", "--input", file.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("already exists"));

    if let Some((_, admin, name)) = &pg {
        drop_postgres_database(admin, name);
    }
}
