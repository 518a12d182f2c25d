//! What the command line accepts: the commands, their arguments, and the parsers of values.

use chrono::{DateTime, NaiveDate, Utc};
use clap::{Args, Parser, Subcommand};

use crate::domain::calendar::Nation;
use crate::domain::{DayCount, DueKind};

#[derive(Parser)]
#[command(name = "redress", version, about = "Case management for moderation appeals and complaints")]
pub(super) struct Cli {
    #[command(subcommand)]
    pub(super) command: Command,
}

#[derive(Subcommand)]
pub(super) enum Command {
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
        /// List what would happen, and change nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Print the deadline a clock starting at an instant would get: RFC 3339 in UTC, then the
    /// date in the organisation's time zone.
    Deadline {
        #[arg(long)]
        org: String,
        /// appeal, response, escalation or committee.
        #[arg(long, value_parser = parse_kind)]
        kind: DueKind,
        #[arg(long, value_parser = parse_instant)]
        from: DateTime<Utc>,
    },
    /// Write an organisation's whole history as JSON (to move it to another database).
    Export {
        #[arg(long)]
        org: String,
        /// The file to write (default: standard output).
        #[arg(long)]
        output: Option<std::path::PathBuf>,
    },
    /// Read an export into this database, in one transaction, and check the counts.
    Import {
        /// The file to read (default: standard input).
        #[arg(long)]
        input: Option<std::path::PathBuf>,
    },
    /// The email outbox: what is queued, sent and failed; retry or cancel an email.
    Outbox {
        #[command(subcommand)]
        command: OutboxCommand,
    },
    /// One-off bank holidays of a nation (a state funeral, a coronation).
    Holiday {
        #[command(subcommand)]
        command: HolidayCommand,
    },
    /// An organisation's own closure days.
    Closure {
        #[command(subcommand)]
        command: ClosureCommand,
    },
}

#[derive(Subcommand)]
pub(super) enum OutboxCommand {
    /// List emails, newest first.
    List {
        /// pending, sending, sent, failed or cancelled.
        #[arg(long)]
        status: Option<String>,
        #[arg(long)]
        org: Option<String>,
        /// How many to list (1 to 200).
        #[arg(long, default_value_t = 50)]
        limit: i64,
        /// Continue after the last email of an earlier listing (it prints the cursor to give).
        #[arg(long)]
        cursor: Option<String>,
    },
    /// Send a failed or cancelled email again (or a pending one now).
    Retry { id: String },
    /// Stop trying to send an email that has not gone out.
    Cancel { id: String },
}

#[derive(Subcommand)]
pub(super) enum HolidayCommand {
    /// Add a one-off bank holiday for a nation.
    Add {
        #[arg(long, value_parser = parse_nation)]
        nation: Nation,
        #[arg(long)]
        date: NaiveDate,
        #[arg(long)]
        title: String,
    },
}

#[derive(Subcommand)]
pub(super) enum ClosureCommand {
    /// Add a day the organisation is closed.
    Add {
        #[arg(long)]
        org: String,
        #[arg(long)]
        date: NaiveDate,
        #[arg(long)]
        title: String,
    },
}

pub(super) fn parse_kind(s: &str) -> Result<DueKind, String> {
    match s {
        "appeal" | "appeal_window" => Ok(DueKind::AppealWindow),
        "response" => Ok(DueKind::Response),
        "escalation" | "escalation_window" => Ok(DueKind::EscalationWindow),
        "committee" | "committee_target" => Ok(DueKind::CommitteeTarget),
        other => Err(format!("{other:?} is not appeal, response, escalation or committee")),
    }
}

pub(super) fn parse_nation(s: &str) -> Result<Nation, String> {
    Nation::parse(s).ok_or_else(|| format!("{s:?} is not england-and-wales, scotland or northern-ireland"))
}

pub(super) fn parse_count(s: &str) -> Result<DayCount, String> {
    DayCount::parse(s).ok_or_else(|| format!("{s:?} is not working or calendar"))
}

#[derive(Subcommand)]
pub(super) enum OrgCommand {
    /// Add an organisation.
    Add(OrgAdd),
    /// Change an organisation's settings; what is not given stays as it is.
    Set(OrgSet),
}

#[derive(Args)]
pub(super) struct OrgSet {
    pub(super) slug: String,
    #[arg(long)]
    pub(super) name: Option<String>,
    #[arg(long)]
    pub(super) secretary_email: Option<String>,
    #[arg(long)]
    pub(super) timezone: Option<String>,
    #[arg(long, value_parser = parse_nation)]
    pub(super) nation: Option<Nation>,
    #[arg(long)]
    pub(super) appeal_days: Option<u32>,
    #[arg(long, value_parser = parse_count)]
    pub(super) appeal_count: Option<DayCount>,
    #[arg(long)]
    pub(super) response_days: Option<u32>,
    #[arg(long, value_parser = parse_count)]
    pub(super) response_count: Option<DayCount>,
    #[arg(long)]
    pub(super) escalation_days: Option<u32>,
    #[arg(long, value_parser = parse_count)]
    pub(super) escalation_count: Option<DayCount>,
    #[arg(long)]
    pub(super) committee_days: Option<u32>,
    #[arg(long, value_parser = parse_count)]
    pub(super) committee_count: Option<DayCount>,
    /// Working days before a response deadline to remind the moderators (0: never).
    #[arg(long)]
    pub(super) response_reminder_days: Option<u32>,
    /// Working days before the committee's target to remind the secretary (0: never).
    #[arg(long)]
    pub(super) committee_reminder_days: Option<u32>,
    /// Days a poster or reporter has to answer a request for more information.
    #[arg(long)]
    pub(super) info_answer_days: Option<u32>,
}

#[derive(Args)]
pub(super) struct OrgAdd {
    /// Short name used in URLs, e.g. penrith-clp.
    #[arg(long)]
    pub(super) slug: String,
    #[arg(long)]
    pub(super) name: String,
    /// Where escalations and overdue alerts go.
    #[arg(long)]
    pub(super) secretary_email: String,
    /// Letters that start every case reference (default: the first three of the slug).
    #[arg(long)]
    pub(super) prefix: Option<String>,
    /// IANA time zone in which deadlines are counted.
    #[arg(long, default_value = "Europe/London")]
    pub(super) timezone: String,
    #[arg(long)]
    pub(super) appeal_window_days: Option<i32>,
    #[arg(long)]
    pub(super) response_days: Option<i32>,
    #[arg(long)]
    pub(super) escalation_window_days: Option<i32>,
    #[arg(long)]
    pub(super) committee_target_days: Option<i32>,
}

#[derive(Subcommand)]
pub(super) enum RuleCommand {
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
pub(super) enum UserCommand {
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
pub(super) enum TokenCommand {
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

pub(super) fn parse_instant(s: &str) -> Result<DateTime<Utc>, String> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| format!("{s:?} is not an RFC 3339 instant like 2026-04-02T09:30:00Z ({e})"))
}
