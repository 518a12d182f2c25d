//! The command line: run the server, and the set-up and maintenance an administrator does.

use std::io::Read;
use std::net::TcpListener;
use std::process::ExitCode;

use chrono::{DateTime, Utc};
use clap::{Args, Parser, Subcommand};

use crate::config::Config;
use crate::db;
use crate::mail::outbox::{self, Mailer};
use crate::server;
use crate::services::{self, OrgInput};

#[derive(Parser)]
#[command(name = "redress", version, about = "Case management for moderation appeals and complaints")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Migrate the database, then serve HTTP and run the outbox worker and the deadline sweep.
    Serve,
    /// Bring the database schema up to date and exit.
    Migrate,
    /// Organisations.
    Org {
        #[command(subcommand)]
        command: OrgCommand,
    },
    /// Policy rules of an organisation.
    Rule {
        #[command(subcommand)]
        command: RuleCommand,
    },
    /// Staff accounts.
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
    /// API tokens.
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
    /// Act on every deadline passed at an instant (exactly once, however often it runs), then
    /// deliver the email it queued.
    Sweep {
        /// The instant to sweep at, RFC 3339 (default: now).
        #[arg(long, value_parser = parse_instant)]
        now: Option<DateTime<Utc>>,
        /// Leave the queued email for the server's worker.
        #[arg(long)]
        no_deliver: bool,
    },
}

#[derive(Subcommand)]
enum OrgCommand {
    /// Add an organisation.
    Add(OrgAdd),
}

#[derive(Args)]
struct OrgAdd {
    /// Short name used in URLs, e.g. penrith-clp.
    #[arg(long)]
    slug: String,
    #[arg(long)]
    name: String,
    /// Where escalations and overdue alerts go.
    #[arg(long)]
    secretary_email: String,
    /// Letters that start every case reference (default: the first three of the slug).
    #[arg(long)]
    prefix: Option<String>,
    /// IANA time zone in which deadlines are counted.
    #[arg(long, default_value = "Europe/London")]
    timezone: String,
    #[arg(long)]
    appeal_window_days: Option<i32>,
    #[arg(long)]
    response_days: Option<i32>,
    #[arg(long)]
    escalation_window_days: Option<i32>,
    #[arg(long)]
    committee_target_days: Option<i32>,
}

#[derive(Subcommand)]
enum RuleCommand {
    /// Add a rule to an organisation's policy.
    Add {
        #[arg(long)]
        org: String,
        #[arg(long)]
        code: String,
        #[arg(long)]
        title: String,
        #[arg(long)]
        summary: String,
    },
}

#[derive(Subcommand)]
enum UserCommand {
    /// Add a staff member with a role (run again to give someone a second role).
    Add {
        #[arg(long)]
        org: String,
        #[arg(long)]
        email: String,
        #[arg(long)]
        name: String,
        /// admin, moderator, secretary or committee.
        #[arg(long)]
        role: String,
        /// Read a password from standard input (for signing in to the web interface).
        #[arg(long)]
        password_stdin: bool,
    },
    /// Set a staff member's password, read from standard input.
    Password {
        #[arg(long)]
        email: String,
    },
}

#[derive(Subcommand)]
enum TokenCommand {
    /// Issue an API token for a staff member; it is printed once and only its hash is kept.
    Add {
        #[arg(long)]
        org: String,
        #[arg(long)]
        email: String,
        #[arg(long, default_value = "cli")]
        label: String,
    },
}

fn read_password() -> Result<String, String> {
    let mut buf = String::new();
    std::io::stdin().read_to_string(&mut buf).map_err(|e| format!("cannot read the password: {e}"))?;
    Ok(buf.trim_end_matches(['\r', '\n']).to_string())
}

fn parse_instant(s: &str) -> Result<DateTime<Utc>, String> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| format!("{s:?} is not an RFC 3339 instant like 2026-04-02T09:30:00Z ({e})"))
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<(), String> {
    let config = Config::from_env().map_err(|e| e.to_string())?;
    let now = Utc::now();
    let open = || db::connect(&config.database_url, 2).map_err(|e| e.to_string());
    match cli.command {
        Command::Serve => {
            let listener = TcpListener::bind(config.bind)
                .map_err(|e| format!("cannot listen on {}: {e}", config.bind))?;
            actix_web::rt::System::new().block_on(server::run(config, listener)).map_err(|e| e.to_string())
        }
        Command::Migrate => {
            open()?;
            println!("database is up to date");
            Ok(())
        }
        Command::Org { command: OrgCommand::Add(a) } => {
            let pool = open()?;
            let mut conn = pool.get().map_err(|e| e.to_string())?;
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
            )
            .map_err(|e| e.to_string())?;
            println!(
                "added organisation {} ({}), references {}-YYYY-NNNN, complaint form at {}/o/{}/report",
                org.slug, org.name, org.reference_prefix, config.base_url, org.slug
            );
            Ok(())
        }
        Command::Rule { command: RuleCommand::Add { org, code, title, summary } } => {
            let pool = open()?;
            let mut conn = pool.get().map_err(|e| e.to_string())?;
            let rule = services::add_rule(&mut conn, &org, &code, &title, &summary, now)
                .map_err(|e| e.to_string())?;
            println!("added rule {} ({})", rule.code, rule.title);
            Ok(())
        }
        Command::User { command: UserCommand::Password { email } } => {
            let password = read_password()?;
            let pool = open()?;
            let mut conn = pool.get().map_err(|e| e.to_string())?;
            services::set_password(&mut conn, &email, &password).map_err(|e| e.to_string())?;
            println!("password set for {email}");
            Ok(())
        }
        Command::User { command: UserCommand::Add { org, email, name, role, password_stdin } } => {
            let password = if password_stdin { Some(read_password()?) } else { None };
            let pool = open()?;
            let mut conn = pool.get().map_err(|e| e.to_string())?;
            let user = services::add_user(&mut conn, &org, &email, &name, &role, password.as_deref(), now)
                .map_err(|e| e.to_string())?;
            println!("{} is now {role} in {org}", user.email);
            Ok(())
        }
        Command::Token { command: TokenCommand::Add { org, email, label } } => {
            let pool = open()?;
            let mut conn = pool.get().map_err(|e| e.to_string())?;
            let token =
                services::add_token(&mut conn, &org, &email, &label, now).map_err(|e| e.to_string())?;
            println!("{token}");
            eprintln!("This token is shown once. Send it as: Authorization: Bearer <token>");
            Ok(())
        }
        Command::Sweep { now: at, no_deliver } => {
            let at = at.unwrap_or(now);
            let pool = open()?;
            let svc = server::services(&config).map_err(|e| e.to_string())?;
            let report = {
                let mut conn = pool.get().map_err(|e| e.to_string())?;
                services::sweep(&mut conn, &svc, at).map_err(|e| e.to_string())?
            };
            println!(
                "swept at {}: {} closed, {} marked overdue, {} already handled",
                at.to_rfc3339(),
                report.closed.len(),
                report.marked_overdue.len(),
                report.skipped
            );
            for r in &report.closed {
                println!("closed {r}");
            }
            for r in &report.marked_overdue {
                println!("overdue {r}");
            }
            if !no_deliver {
                // The SMTP pool lives on the runtime, so it is built (and dropped) inside it.
                let delivered = actix_web::rt::System::new().block_on(async {
                    let mailer = Mailer::from_config(&config).map_err(|e| e.to_string())?;
                    outbox::deliver_due(&pool, &mailer).await.map_err(|e| e.to_string())
                })?;
                println!(
                    "email: {} sent, {} to retry, {} failed",
                    delivered.sent, delivered.retrying, delivered.failed
                );
            }
            Ok(())
        }
    }
}
