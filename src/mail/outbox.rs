//! Delivering the outbox, at least once and as nearly as SMTP allows exactly once.
//!
//! A sender claims one email at a time with a guarded update that writes a claim id and a
//! lease, sends it within a time limit, and records the result only where the row still holds
//! that claim, at once and retrying while the database is busy. So two workers never send one
//! email at the same time, a hung mail server delays only the email being sent, and a worker
//! whose lease ran out cannot overwrite what the next one recorded. An email is sent twice
//! only when a process dies (or cannot reach its database for a whole lease) between the mail
//! server's acceptance and the record of it; the copy carries the same Message-ID.

use std::time::Duration;

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use lettre::message::{header::ContentType, Mailbox, MultiPart, SinglePart};
use lettre::{AsyncFileTransport, AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use crate::config::Config;
use crate::db::{self, DbConnection, DbPool};
use crate::domain::Actor;
use crate::error::AppResult;
use crate::store::{self, OutboxRow};

/// Where a queued email to a poster or reporter carries its private link. The link is minted
/// only as the email is sent, so the outbox never holds one: queued, failed and cancelled
/// emails (which staff can read, and an export copies) give no one a way into the case.
pub const LINK_SLOT: &str = "link-added-when-sent";
/// What a sent email's stored copy shows where its link was.
const LINK_GONE: &str = "[private link removed once sent]";

pub enum Transport {
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
    Files(AsyncFileTransport<Tokio1Executor>),
}

/// The one transport of a process, and the sender address.
pub struct Mailer {
    transport: Transport,
    from: Mailbox,
    domain: String,
    retry_base: chrono::Duration,
    /// How long a claimed email is this process's to send.
    lease: chrono::Duration,
    /// The bound on one email's whole SMTP exchange.
    send_timeout: Duration,
    /// How many emails are sent at the same time, each over a connection of its own.
    senders: usize,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct DeliveryReport {
    pub sent: usize,
    pub retrying: usize,
    pub failed: usize,
}

impl Mailer {
    pub fn from_config(config: &Config) -> Result<Self, MailSetupError> {
        let from: Mailbox = config
            .mail_from
            .parse()
            .map_err(|e| MailSetupError(format!("REDRESS_MAIL_FROM is not a mailbox: {e}")))?;
        let domain = from.email.domain().to_string();
        let transport = match &config.smtp_url {
            Some(url) => {
                // lettre's timeout bounds connecting and each read; the whole exchange is
                // bounded in `send`. No connection pool: a connection given up on half-way
                // through an exchange is closed, never handed to the next email.
                let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
                    .map_err(|e| MailSetupError(format!("SMTP_URL is not valid: {e}")))?
                    .timeout(Some(Duration::from_secs(config.smtp_timeout_secs)))
                    .build();
                Transport::Smtp(transport)
            }
            None => {
                std::fs::create_dir_all(&config.mail_dir).map_err(|e| {
                    MailSetupError(format!(
                        "cannot create the mail folder {}: {e}",
                        config.mail_dir.display()
                    ))
                })?;
                Transport::Files(AsyncFileTransport::<Tokio1Executor>::new(&config.mail_dir))
            }
        };
        let secs = |n: u64| chrono::Duration::seconds(i64::try_from(n).unwrap_or(i64::MAX / 1000));
        Ok(Mailer {
            transport,
            from,
            domain,
            retry_base: secs(config.retry_base_secs),
            lease: secs(config.outbox_lease_secs),
            send_timeout: Duration::from_secs(config.smtp_timeout_secs),
            senders: config.outbox_senders.max(1),
        })
    }

    fn message_id(&self, outbox_id: &str) -> String {
        format!("<{outbox_id}@{}>", self.domain)
    }

    /// The message as it goes out: text and HTML alternatives, a Message-ID made from the
    /// outbox row (so a retry sends the same one), replies to the organisation, and the earlier
    /// emails of the case to the same person as its thread. Every header value comes from a
    /// checked address or from a subject folded to one line; lettre encodes the rest.
    pub fn build(&self, row: &OutboxRow, thread: &Thread) -> Result<Message, String> {
        let to: Mailbox = row.to_address.parse().map_err(|e| format!("bad recipient address: {e}"))?;
        let mut builder = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(crate::mail::one_line(&row.subject))
            .message_id(Some(self.message_id(&row.id)));
        if let Some(reply_to) = &thread.reply_to {
            let mailbox: Mailbox = reply_to.parse().map_err(|e| format!("bad reply-to address: {e}"))?;
            builder = builder.reply_to(mailbox);
        }
        if let Some(last) = thread.earlier.last() {
            builder = builder.in_reply_to(self.message_id(last));
            let refs: Vec<String> = thread.earlier.iter().map(|id| self.message_id(id)).collect();
            builder = builder.references(refs.join(" "));
        }
        let text = SinglePart::builder().header(ContentType::TEXT_PLAIN).body(row.body_text.clone());
        let result = match &row.body_html {
            Some(html) => builder.multipart(
                MultiPart::alternative()
                    .singlepart(text)
                    .singlepart(SinglePart::builder().header(ContentType::TEXT_HTML).body(html.clone())),
            ),
            None => builder.singlepart(text),
        };
        result.map_err(|e| format!("cannot build the message: {e}"))
    }

    /// Sends one message, within the send timeout. `Err((permanent, reason))` on failure; a
    /// timeout is a temporary failure, and its connection is closed.
    async fn send(&self, row: &OutboxRow, thread: &Thread) -> Result<(), (bool, String)> {
        let message = self.build(row, thread).map_err(|e| (true, e))?;
        let sending = async {
            match &self.transport {
                Transport::Smtp(t) => {
                    t.send(message).await.map(|_| ()).map_err(|e| (e.is_permanent(), e.to_string()))
                }
                Transport::Files(t) => t.send(message).await.map(|_| ()).map_err(|e| (false, e.to_string())),
            }
        };
        match tokio::time::timeout(self.send_timeout, sending).await {
            Ok(result) => result,
            Err(_) => Err((
                false,
                format!("the mail server did not finish within {} seconds", self.send_timeout.as_secs()),
            )),
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct MailSetupError(String);

/// Where an email sits in its case's correspondence: the organisation's address for replies,
/// and the earlier emails of the case to the same recipient, oldest first.
#[derive(Debug, Clone, Default)]
pub struct Thread {
    pub reply_to: Option<String>,
    pub earlier: Vec<String>,
}

/// How long temporary failures are retried before an email is given up as failed.
const GIVE_UP_AFTER: chrono::Duration = chrono::Duration::hours(48);

pub fn thread_of(conn: &mut DbConnection, row: &OutboxRow) -> QueryResult<Thread> {
    Ok(Thread {
        reply_to: store::secretary_email_of(conn, &row.organisation_id)?,
        earlier: store::earlier_in_thread(conn, row)?,
    })
}

/// The email as this attempt sends it: one to a party of a case gets a private link minted
/// for it now, returned with the link's id so that it can be revoked if the attempt fails.
fn with_link(
    conn: &mut DbConnection,
    row: &OutboxRow,
    now: DateTime<Utc>,
) -> QueryResult<(OutboxRow, Option<String>)> {
    let party = match row.recipient_kind.as_str() {
        "poster" => Actor::Poster,
        "reporter" => Actor::Reporter,
        _ => return Ok((row.clone(), None)),
    };
    let case_id = match &row.case_id {
        Some(id) if row.body_text.contains(LINK_SLOT) => id,
        _ => return Ok((row.clone(), None)),
    };
    let (token_id, secret) = store::mint_token(conn, case_id, party, Some(&row.id), now)?;
    let mut sending = row.clone();
    sending.body_text = row.body_text.replace(LINK_SLOT, &secret);
    sending.body_html = row.body_html.as_ref().map(|html| html.replace(LINK_SLOT, &secret));
    Ok((sending, Some(token_id)))
}

/// The SMTP reply code in a failure, for the log: the reply's text often repeats the
/// recipient's address, which must not be logged (it stays in the outbox row for staff).
fn smtp_code(reason: &str) -> Option<u16> {
    reason
        .as_bytes()
        .windows(3)
        .enumerate()
        .find(|(i, w)| {
            matches!(w[0], b'4' | b'5')
                && w[1].is_ascii_digit()
                && w[2].is_ascii_digit()
                && !reason.as_bytes().get(i + 3).is_some_and(u8::is_ascii_digit)
                && !(*i > 0 && reason.as_bytes()[i - 1].is_ascii_digit())
        })
        .and_then(|(i, _)| reason[i..i + 3].parse().ok())
}

/// Exponential backoff from `base`, doubling with each attempt, capped at an hour.
pub fn backoff(attempts: i32, base: chrono::Duration) -> chrono::Duration {
    let exp = attempts.clamp(1, 13) - 1;
    (base * (1 << exp)).min(chrono::Duration::hours(1))
}

/// The backoff spread by up to a fifth either way, so that many emails failing together do not
/// all come back at the same moment.
pub fn with_jitter(wait: chrono::Duration) -> chrono::Duration {
    use rand::Rng;
    let ms = wait.num_milliseconds().max(1);
    let spread = ms / 5;
    chrono::Duration::milliseconds(ms + rand::rng().random_range(-spread..=spread))
}

/// What a sent email's stored copy shows where its private link was: the placeholder, or a
/// link itself in an email queued before links were minted at sending.
pub fn redact_links(body: &str) -> String {
    let body = body.replace(LINK_SLOT, LINK_GONE);
    let body = body.as_str();
    let mut out = String::with_capacity(body.len());
    let mut rest = body;
    while let Some(pos) = rest.find("/c/") {
        let (head, tail) = rest.split_at(pos + 3);
        out.push_str(head);
        let token_len =
            tail.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_').count();
        if token_len >= 32 {
            out.push_str(LINK_GONE);
        } else {
            out.push_str(&tail[..token_len]);
        }
        rest = &tail[token_len..];
    }
    out.push_str(rest);
    out
}

/// Whether the process is stopping: senders finish the email in hand and take no other.
pub type Stopping = std::sync::Arc<std::sync::atomic::AtomicBool>;

fn stopping(stop: Option<&Stopping>) -> bool {
    stop.is_some_and(|s| s.load(std::sync::atomic::Ordering::Relaxed))
}

/// One pass over the outbox: the configured number of senders (one by default), each claiming, sending and recording one email
/// at a time until nothing is due, the mail server is refusing for now, or the process stops.
pub async fn deliver_due(
    pool: &DbPool,
    mailer: &Mailer,
    stop: Option<&Stopping>,
) -> AppResult<DeliveryReport> {
    let senders = (0..mailer.senders).map(|_| deliver_one_by_one(pool, mailer, stop));
    let mut report = DeliveryReport::default();
    let mut first_error = None;
    for result in futures_util::future::join_all(senders).await {
        match result {
            Ok(r) => {
                report.sent += r.sent;
                report.retrying += r.retrying;
                report.failed += r.failed;
            }
            Err(e) => first_error = first_error.or(Some(e)),
        }
    }
    match first_error {
        Some(e) if report.sent + report.retrying + report.failed == 0 => Err(e),
        Some(e) => {
            tracing::error!(error = %e, "an email sender stopped early");
            Ok(report)
        }
        None => Ok(report),
    }
}

async fn deliver_one_by_one(
    pool: &DbPool,
    mailer: &Mailer,
    stop: Option<&Stopping>,
) -> AppResult<DeliveryReport> {
    let mut report = DeliveryReport::default();
    while !stopping(stop) {
        let claim_id = db::new_id();
        let claimed_at = Utc::now();
        // Claiming the email and minting its link is one write transaction.
        let (lease, mine) = (mailer.lease, claim_id.clone());
        let claimed = db::run(pool, move |conn| {
            db::write_tx(conn, |conn| {
                let Some((row, lapsed)) = store::claim_email(conn, Utc::now(), lease, &mine)? else {
                    return Ok(None);
                };
                let thread = thread_of(conn, &row)?;
                let (sending, token_id) = with_link(conn, &row, Utc::now())?;
                Ok(Some((row, lapsed, sending, token_id, thread)))
            })
        })
        .await?;
        let Some((row, lapsed, sending, token_id, thread)) = claimed else { break };
        if lapsed {
            // Left "sending" by a worker that did not record what happened: the server may have
            // accepted it already. The copy carries the same Message-ID.
            tracing::warn!(outbox_id = %row.id, attempts = row.attempts, "email may have been sent already; sending again with the same Message-ID");
        }
        let mut result = mailer.send(&sending, &thread).await;
        drop(sending);
        let now = Utc::now();
        // Temporary failures are retried for two days; after that the email is failed, so
        // that the organisation learns of it rather than waiting for ever.
        if let Err((false, reason)) = &result {
            if now - crate::db::from_db_time(row.created_at) > GIVE_UP_AFTER {
                result = Err((true, format!("gave up after 48 hours of temporary failures; last: {reason}")));
            }
        }
        match &result {
            Ok(()) => report.sent += 1,
            Err((true, _)) => report.failed += 1,
            Err((false, _)) => report.retrying += 1,
        }
        if let Err((permanent, reason)) = &result {
            let code = smtp_code(reason);
            tracing::warn!(outbox_id = %row.id, attempts = row.attempts, permanent, ?code, "email not delivered");
        }
        let retry_after = with_jitter(backoff(row.attempts, mailer.retry_base));
        // The result is recorded before anything else is claimed, retrying while the database
        // will not take it, for as long as the claim lasts: past that another worker may send
        // the email again, and a record would be wrong.
        let deadline = claimed_at + mailer.lease;
        let mut wait = Duration::from_millis(50);
        loop {
            let (r, mine, outcome, token) = (row.clone(), claim_id.clone(), result.clone(), token_id.clone());
            let recorded = db::run(pool, move |conn| {
                db::write_tx(conn, |conn| {
                    let n = match outcome {
                        Ok(()) => {
                            let html = r.body_html.as_deref().map(redact_links);
                            store::record_sent(
                                conn,
                                &r.id,
                                &mine,
                                &redact_links(&r.body_text),
                                html.as_deref(),
                                now,
                            )?
                        }
                        Err((permanent, reason)) => {
                            if let Some(token_id) = &token {
                                // No one has the link, and the retry carries a new one.
                                store::revoke_link(conn, token_id, now)?;
                            }
                            store::record_failure(conn, &r.id, &mine, permanent, &reason, retry_after, now)?
                        }
                    };
                    Ok(n)
                })
            })
            .await;
            match recorded {
                Ok(0) => {
                    tracing::warn!(outbox_id = %row.id, "the claim on an email ran out before its result was recorded");
                    break;
                }
                Ok(_) => break,
                Err(e) if Utc::now() + chrono::Duration::from_std(wait).unwrap_or_default() < deadline => {
                    tracing::warn!(outbox_id = %row.id, error = %e, "could not record an email's result yet; trying again");
                    tokio::time::sleep(wait).await;
                    wait = (wait * 2).min(Duration::from_secs(2));
                }
                Err(e) => return Err(e),
            }
        }
        if matches!(result, Err((false, _))) {
            // The server is not taking mail: the rest waits for the next pass rather than
            // hammering it message by message.
            break;
        }
    }
    Ok(report)
}

/// The outbox for an admin, a page at a time: newest first, optionally one status or one
/// organisation, starting after `cursor` (from the page before).
pub fn list(
    conn: &mut DbConnection,
    status: Option<&str>,
    org_slug: Option<&str>,
    cursor: Option<&str>,
    limit: i64,
) -> AppResult<crate::store::lists::Page<OutboxRow>> {
    use crate::store::lists::{self, Cursor, Order};
    if let Some(status) = status {
        if !["pending", "sending", "sent", "failed", "cancelled"].contains(&status) {
            return Err(crate::error::AppError::field(
                "status",
                "is one of pending, sending, sent, failed, cancelled",
            ));
        }
    }
    if !(1..=lists::MAX_LIMIT).contains(&limit) {
        return Err(crate::error::AppError::field("limit", format!("is from 1 to {}", lists::MAX_LIMIT)));
    }
    let cursor = cursor.map(|c| Cursor::decode(c.trim(), Order::Outbox)).transpose()?;
    let org_id = match org_slug {
        Some(slug) => Some(
            store::org_by_slug(conn, slug)?
                .ok_or_else(|| crate::error::AppError::NotFound(format!("no organisation {slug:?}")))?
                .id,
        ),
        None => None,
    };
    lists::outbox_page(conn, org_id.as_ref(), status, cursor.as_ref(), limit)
}

/// Queues an email again, at once: a failed or cancelled one, or a pending one waiting out
/// its backoff. A sent email is never sent twice.
pub fn retry(conn: &mut DbConnection, id: &str, now: DateTime<Utc>) -> AppResult<()> {
    if !store::requeue_email(conn, id, now)? {
        return Err(crate::error::AppError::Conflict(format!(
            "email {id} does not exist, or is sent or being sent"
        )));
    }
    Ok(())
}

/// Stops an email that has not gone out.
pub fn cancel(conn: &mut DbConnection, id: &str) -> AppResult<()> {
    if !store::cancel_email(conn, id)? {
        return Err(crate::error::AppError::Conflict(format!(
            "email {id} does not exist, or is sent, being sent or cancelled"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_an_hour() {
        let base = chrono::Duration::seconds(60);
        assert_eq!(backoff(1, base), chrono::Duration::seconds(60));
        assert_eq!(backoff(2, base), chrono::Duration::seconds(120));
        assert_eq!(backoff(4, base), chrono::Duration::seconds(480));
        assert_eq!(backoff(30, base), chrono::Duration::hours(1));
    }

    #[test]
    fn sent_mail_keeps_no_private_link() {
        let token = "ab".repeat(32);
        let body = format!("Appeal here:\nhttps://x.example/c/{token}\nThanks. See /c/short too.");
        let redacted = redact_links(&body);
        assert!(!redacted.contains(&token));
        assert!(redacted.contains("https://x.example/c/[private link removed once sent]"));
        assert!(redacted.contains("/c/short too."));
        let queued = format!("https://x.example/c/{LINK_SLOT}");
        assert_eq!(redact_links(&queued), "https://x.example/c/[private link removed once sent]");
    }

    #[test]
    fn only_the_reply_code_of_a_failure_is_logged() {
        assert_eq!(smtp_code("permanent error (550): 5.1.1 <pat@example.org>: no such user"), Some(550));
        assert_eq!(smtp_code("transient error (451): try again later"), Some(451));
        assert_eq!(
            smtp_code("gave up after 48 hours of temporary failures; last: transient error (421): busy"),
            Some(421)
        );
        assert_eq!(smtp_code("Connection refused (os error 111)"), None);
        assert_eq!(smtp_code("port 45678 closed"), None);
    }
}
