//! The command line: run the server, and the set-up and maintenance an administrator does.

use std::io::Read;
use std::net::TcpListener;
use std::process::ExitCode;

use chrono::Utc;

use clap::Parser;

use crate::config::Config;
use crate::db;
use crate::error::{AppError, AppResult};
use crate::mail::outbox::{self, Mailer};
use crate::server;
use crate::services::{self, OrgInput};

mod args;

use args::*;

fn read_password() -> AppResult<String> {
    let mut buf = String::new();
    std::io::stdin()
        .read_to_string(&mut buf)
        .map_err(|e| AppError::because("cannot read the password", e))?;
    Ok(buf.trim_end_matches(['\r', '\n']).to_string())
}

/// The server logs one JSON object per line (UTC timestamps, the request's id, actor and case
/// from its span), for log collectors; the other commands log plain text for people. Set
/// REDRESS_LOG_FORMAT to `json` or `text` to choose, and RUST_LOG to filter.
fn init_logging(serving: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let json = match std::env::var("REDRESS_LOG_FORMAT").ok().as_deref().map(str::trim) {
        Some("json") => true,
        Some("text") => false,
        _ => serving,
    };
    // Each line is written before the request that caused it is answered: a line queued for a
    // writer thread would be lost if the process were killed (a background writer measured no
    // faster here, either).
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    if json {
        builder.json().flatten_event(true).with_current_span(true).with_span_list(false).init();
    } else {
        builder.init();
    }
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(matches!(cli.command, Command::Serve));
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            if e.is_internal() && !e.causes().is_empty() {
                eprintln!("caused by: {}", e.causes());
            }
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> AppResult<()> {
    let config = Config::from_env().map_err(|e| AppError::because("the configuration", e))?;
    let now = Utc::now();
    let open = || db::connect(&config.database_url, 2).map_err(|e| AppError::because("the database", e));
    match cli.command {
        Command::Serve => {
            let listener = TcpListener::bind(config.bind)
                .map_err(|e| AppError::because(format!("cannot listen on {}", config.bind), e))?;
            actix_web::rt::System::new()
                .block_on(server::run(config, listener))
                .map_err(|e| AppError::because("the server stopped", e))
        }
        Command::Migrate => {
            open()?;
            println!("database is up to date");
            Ok(())
        }
        Command::Org { command: OrgCommand::Add(a) } => {
            let pool = open()?;
            let mut conn = pool.get()?;
            let org = services::add_org(
                &mut conn,
                OrgInput {
                    slug: a.slug,
                    name: a.name,
                    secretary_email: a.secretary_email,
                    reference_prefix: a.prefix,
                    timezone: Some(a.timezone),
                    appeal_window_days: a.appeal_window_days,
                    response_days: a.response_days,
                    escalation_window_days: a.escalation_window_days,
                    committee_target_days: a.committee_target_days,
                },
                now,
            )?;
            println!(
                "added organisation {} ({}), references {}-YYYY-NNNN, complaint form at {}/o/{}/report",
                org.slug, org.name, org.reference_prefix, config.base_url, org.slug
            );
            Ok(())
        }
        Command::Org { command: OrgCommand::Set(a) } => {
            let pool = open()?;
            let mut conn = pool.get()?;
            let org = services::find_org(&mut conn, &a.slug)?;
            let mut s = services::OrgSettings::of(&org);
            let set = |field: &mut String, v: Option<String>| {
                if let Some(v) = v {
                    *field = v;
                }
            };
            set(&mut s.name, a.name);
            set(&mut s.secretary_email, a.secretary_email);
            set(&mut s.timezone, a.timezone);
            set(&mut s.nation, a.nation.map(|n| n.as_str().into()));
            set(&mut s.appeal_window_days, a.appeal_days.map(|d| d.to_string()));
            set(&mut s.appeal_window_count, a.appeal_count.map(|c| c.as_str().into()));
            set(&mut s.response_days, a.response_days.map(|d| d.to_string()));
            set(&mut s.response_count, a.response_count.map(|c| c.as_str().into()));
            set(&mut s.escalation_window_days, a.escalation_days.map(|d| d.to_string()));
            set(&mut s.escalation_window_count, a.escalation_count.map(|c| c.as_str().into()));
            set(&mut s.committee_target_days, a.committee_days.map(|d| d.to_string()));
            set(&mut s.committee_target_count, a.committee_count.map(|c| c.as_str().into()));
            set(&mut s.response_reminder_days, a.response_reminder_days.map(|d| d.to_string()));
            set(&mut s.committee_reminder_days, a.committee_reminder_days.map(|d| d.to_string()));
            set(&mut s.info_answer_days, a.info_answer_days.map(|d| d.to_string()));
            services::update_org(&mut conn, &org, &s, services::ChangedBy::CommandLine, now)?;
            println!("updated {}", org.slug);
            Ok(())
        }
        Command::Deadline { org, kind, from } => {
            let pool = open()?;
            let mut conn = pool.get()?;
            let org = services::find_org(&mut conn, &org)?;
            let schedule = services::schedule_of(&mut conn, &org)?;
            let due = schedule.deadline(kind, from);
            println!("{}", due.to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
            println!("{}", crate::domain::deadline::long_date(due, schedule.tz));
            Ok(())
        }
        Command::Export { org, output } => {
            let pool = open()?;
            let mut conn = pool.get()?;
            let data = crate::services::transfer::export(&mut conn, &org)?;
            let json =
                serde_json::to_string(&data).map_err(|e| AppError::because("cannot write the export", e))?;
            match output {
                Some(path) => std::fs::write(&path, json)
                    .map_err(|e| AppError::because(format!("cannot write {}", path.display()), e))?,
                None => println!("{json}"),
            }
            let c = data.counts();
            eprintln!(
                "exported {org}: {} users, {} cases, {} events, {} emails, {} other rows",
                c.users, c.cases, c.events, c.emails, c.others
            );
            Ok(())
        }
        Command::Import { input } => {
            let text = match input {
                Some(path) => std::fs::read_to_string(&path)
                    .map_err(|e| AppError::because(format!("cannot read {}", path.display()), e))?,
                None => {
                    let mut buf = String::new();
                    std::io::stdin()
                        .read_to_string(&mut buf)
                        .map_err(|e| AppError::because("cannot read the export", e))?;
                    buf
                }
            };
            let data: crate::store::transfer::OrgExport = serde_json::from_str(&text)
                .map_err(|e| AppError::because("this is not a Redress export", e))?;
            let pool = open()?;
            let mut conn = pool.get()?;
            let c = crate::services::transfer::import(&mut conn, &data, &mut std::io::stderr())?;
            println!(
                "imported {}: {} users, {} cases, {} events, {} emails, {} other rows; counts checked",
                data.organisation.slug, c.users, c.cases, c.events, c.emails, c.others
            );
            Ok(())
        }
        Command::Outbox { command } => {
            let pool = open()?;
            let mut conn = pool.get()?;
            match command {
                OutboxCommand::List { status, org, limit, cursor } => {
                    let page =
                        outbox::list(&mut conn, status.as_deref(), org.as_deref(), cursor.as_deref(), limit)?;
                    for r in page.rows {
                        println!(
                            "{}\t{}\t{}\t{}\t{}\tattempts={}\t{}",
                            r.id,
                            r.status,
                            r.created_at.format("%Y-%m-%dT%H:%M:%SZ"),
                            r.to_address,
                            r.template,
                            r.attempts,
                            r.last_error.unwrap_or_default()
                        );
                    }
                    // The rows go to standard output and this to standard error, so that a
                    // script reading the rows is not given it as one.
                    if let Some(next) = page.next {
                        eprintln!("more: continue with --cursor {}", next.encode());
                    }
                }
                OutboxCommand::Retry { id } => {
                    outbox::retry(&mut conn, &id, now)?;
                    println!("{id} will be sent again");
                }
                OutboxCommand::Cancel { id } => {
                    outbox::cancel(&mut conn, &id)?;
                    println!("{id} cancelled");
                }
            }
            Ok(())
        }
        Command::Holiday { command: HolidayCommand::Add { nation, date, title } } => {
            let pool = open()?;
            let mut conn = pool.get()?;
            services::add_closed_day(
                &mut conn,
                Some(nation),
                None,
                date,
                &title,
                services::ChangedBy::CommandLine,
                now,
            )?;
            println!("{date} is now a bank holiday in {nation}");
            Ok(())
        }
        Command::Closure { command: ClosureCommand::Add { org, date, title } } => {
            let pool = open()?;
            let mut conn = pool.get()?;
            let org = services::find_org(&mut conn, &org)?;
            services::add_closed_day(
                &mut conn,
                None,
                Some(&org),
                date,
                &title,
                services::ChangedBy::CommandLine,
                now,
            )?;
            println!("{date} is now a closure day of {}", org.slug);
            Ok(())
        }
        Command::Rule { command: RuleCommand::Add { org, code, title, summary } } => {
            let pool = open()?;
            let mut conn = pool.get()?;
            let rule = services::add_rule(
                &mut conn,
                &org,
                &code,
                &title,
                &summary,
                services::ChangedBy::CommandLine,
                now,
            )?;
            println!("added rule {} ({})", rule.code, rule.title);
            Ok(())
        }
        Command::User { command: UserCommand::Password { email } } => {
            let password = read_password()?;
            let pool = open()?;
            let mut conn = pool.get()?;
            services::set_password(&mut conn, &email, &password)?;
            println!("password set for {email}");
            Ok(())
        }
        Command::User { command: UserCommand::Add { org, email, name, role, password_stdin } } => {
            let password = if password_stdin { Some(read_password()?) } else { None };
            let pool = open()?;
            let mut conn = pool.get()?;
            let user = services::add_user(
                &mut conn,
                &org,
                services::NewMember {
                    email: &email,
                    name: &name,
                    role: &role,
                    password: password.as_deref(),
                },
                services::ChangedBy::CommandLine,
                now,
            )?;
            println!("{} is now {role} in {org}", user.email);
            Ok(())
        }
        Command::Token { command: TokenCommand::Add { org, email, label } } => {
            let pool = open()?;
            let mut conn = pool.get()?;
            let token = services::add_token(&mut conn, &org, &email, &label, None, now)?;
            println!("{token}");
            eprintln!("This token is shown once. Send it as: Authorization: Bearer <token>");
            Ok(())
        }
        Command::Sweep { now: at, no_deliver, dry_run } => {
            let at = at.unwrap_or(now);
            let pool = open()?;
            let svc = server::services(&config).map_err(|e| AppError::because("cannot start", e))?;
            let report = {
                let mut conn = pool.get()?;
                if dry_run {
                    services::sweep_dry_run(&mut conn, &svc, at)
                } else {
                    services::sweep(&mut conn, &svc, at)
                }?
            };
            println!(
                "{} at {}: {} closed, {} marked overdue, {} clocks restarted, {} reminders, {} already handled",
                if dry_run { "dry run, nothing changed" } else { "swept" },
                at.to_rfc3339(),
                report.closed.len(),
                report.marked_overdue.len(),
                report.resumed.len(),
                report.reminded.len(),
                report.skipped
            );
            let would = if dry_run { "would be " } else { "" };
            for r in &report.closed {
                println!("{would}closed {r}");
            }
            for r in &report.marked_overdue {
                println!("{would}overdue {r}");
            }
            for r in &report.resumed {
                println!("{would}restarted {r}");
            }
            for r in &report.reminded {
                println!("{would}reminded {r}");
            }
            if !no_deliver && !dry_run {
                // lettre's transport needs the runtime, so it is built (and dropped) inside it.
                let delivered = actix_web::rt::System::new().block_on(async {
                    let mailer = Mailer::from_config(&config)
                        .map_err(|e| AppError::because("cannot set up email", e))?;
                    outbox::deliver_due(&pool, &mailer, None).await
                })?;
                println!(
                    "email: {} sent, {} to retry, {} failed",
                    delivered.sent, delivered.retrying, delivered.failed
                );
            }
            if report.failed > 0 {
                // Every other case was acted on; a non-zero exit tells cron that these were not.
                return Err(AppError::Conflict(format!(
                    "{} case(s) could not be acted on: each is in the log and on its organisation's admins' work queue, and is tried again at the next sweep",
                    report.failed
                )));
            }
            Ok(())
        }
    }
}
