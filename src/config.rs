//! Configuration, read from the environment once at start-up, validated, and passed to
//! whatever needs it.

use std::net::SocketAddr;
use std::path::PathBuf;

#[derive(Debug, Clone)]
pub struct Config {
    pub database_url: String,
    pub bind: SocketAddr,
    /// Where people reach this instance; private links are built on it. No trailing slash.
    pub base_url: String,
    pub smtp_url: Option<String>,
    pub mail_from: String,
    pub mail_dir: PathBuf,
    /// How often the server sweeps deadlines.
    pub sweep_interval_secs: u64,
    /// How often the outbox is polled when nothing wakes the worker.
    pub outbox_poll_secs: u64,
    /// The first wait before a failed email is tried again; each further failure doubles it,
    /// up to an hour.
    pub retry_base_secs: u64,
    /// How long a claimed email is left to the worker that claimed it before another may take
    /// it. It must be longer than `smtp_timeout_secs` with room to record the result.
    pub outbox_lease_secs: u64,
    /// The longest one email's whole SMTP exchange may take (connecting, every reply, the
    /// message); after that the attempt counts as a temporary failure.
    pub smtp_timeout_secs: u64,
    /// How many emails one server sends at the same time. More send faster through a slow
    /// mail server, but a crash can then leave that many half-sent, each sent again.
    pub outbox_senders: usize,
    /// A folder of email templates that override the built-in ones.
    pub email_templates: Option<PathBuf>,
    /// Served behind a reverse proxy that appends the client's address to X-Forwarded-For;
    /// sign-in throttling then counts by that address rather than the proxy's.
    pub trust_proxy: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{name} is not valid: {reason}")]
    Invalid { name: &'static str, reason: String },
}

fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        let bind_text = var("REDRESS_BIND").unwrap_or_else(|| "127.0.0.1:8080".into());
        let bind = bind_text.parse().map_err(|e| ConfigError::Invalid {
            name: "REDRESS_BIND",
            reason: format!("{bind_text:?} is not an address and port ({e})"),
        })?;
        let base_url = var("REDRESS_BASE_URL").unwrap_or_else(|| format!("http://{bind_text}"));
        let config = Config {
            database_url: var("DATABASE_URL").unwrap_or_else(|| "redress.db".into()),
            bind,
            base_url: base_url.trim_end_matches('/').to_string(),
            smtp_url: var("SMTP_URL"),
            mail_from: var("REDRESS_MAIL_FROM").unwrap_or_else(|| "Redress <redress@localhost>".into()),
            mail_dir: var("REDRESS_MAIL_DIR").unwrap_or_else(|| "mail".into()).into(),
            sweep_interval_secs: parse_secs("REDRESS_SWEEP_SECS", 60)?,
            outbox_poll_secs: parse_secs("REDRESS_OUTBOX_POLL_SECS", 15)?,
            retry_base_secs: parse_secs("REDRESS_RETRY_BASE_SECS", 60)?,
            outbox_lease_secs: parse_secs("REDRESS_OUTBOX_LEASE_SECS", 300)?,
            smtp_timeout_secs: parse_secs("REDRESS_SMTP_TIMEOUT_SECS", 60)?,
            outbox_senders: parse_count("REDRESS_OUTBOX_SENDERS", 1)?,
            email_templates: var("REDRESS_EMAIL_TEMPLATES").map(PathBuf::from),
            trust_proxy: parse_bool("REDRESS_TRUST_PROXY")?,
        };
        config.validate()?;
        Ok(config)
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        if !(1..=16).contains(&self.outbox_senders) {
            return Err(ConfigError::Invalid {
                name: "REDRESS_OUTBOX_SENDERS",
                reason: format!("{} is not from 1 to 16", self.outbox_senders),
            });
        }
        if self.outbox_lease_secs < self.smtp_timeout_secs + LEASE_MARGIN_SECS {
            return Err(ConfigError::Invalid {
                name: "REDRESS_OUTBOX_LEASE_SECS",
                reason: format!(
                    "{} seconds is too short: a claimed email must outlast REDRESS_SMTP_TIMEOUT_SECS ({}) by at least {LEASE_MARGIN_SECS} seconds, or another worker could send it again while it is still being sent",
                    self.outbox_lease_secs, self.smtp_timeout_secs
                ),
            });
        }
        if !(self.base_url.starts_with("http://") || self.base_url.starts_with("https://")) {
            return Err(ConfigError::Invalid {
                name: "REDRESS_BASE_URL",
                reason: format!("{:?} must start with http:// or https://", self.base_url),
            });
        }
        if let Err(e) = self.mail_from.parse::<lettre::message::Mailbox>() {
            return Err(ConfigError::Invalid {
                name: "REDRESS_MAIL_FROM",
                reason: format!("{:?} is not a mailbox ({e})", self.mail_from),
            });
        }
        if let Some(url) = &self.smtp_url {
            if !(url.starts_with("smtp://") || url.starts_with("smtps://")) {
                return Err(ConfigError::Invalid {
                    name: "SMTP_URL",
                    reason: "must start with smtp:// or smtps://".into(),
                });
            }
        }
        Ok(())
    }
}

/// What a lease must leave beyond the send timeout, for recording the result (which retries
/// while the database is busy).
pub const LEASE_MARGIN_SECS: u64 = 5;

fn parse_secs(name: &'static str, default: u64) -> Result<u64, ConfigError> {
    match var(name) {
        None => Ok(default),
        Some(v) => match v.parse::<u64>() {
            Ok(n) if n > 0 => Ok(n),
            _ => {
                Err(ConfigError::Invalid { name, reason: format!("{v:?} is not a whole number of seconds") })
            }
        },
    }
}

fn parse_count(name: &'static str, default: usize) -> Result<usize, ConfigError> {
    match var(name) {
        None => Ok(default),
        Some(v) => v
            .trim()
            .parse::<usize>()
            .map_err(|_| ConfigError::Invalid { name, reason: format!("{v:?} is not a whole number") }),
    }
}

fn parse_bool(name: &'static str) -> Result<bool, ConfigError> {
    match var(name).map(|v| v.trim().to_ascii_lowercase()) {
        None => Ok(false),
        Some(v) if ["1", "true", "yes", "on"].contains(&v.as_str()) => Ok(true),
        Some(v) if ["0", "false", "no", "off"].contains(&v.as_str()) => Ok(false),
        Some(v) => Err(ConfigError::Invalid { name, reason: format!("{v:?} is not true or false") }),
    }
}
