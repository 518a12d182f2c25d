//! Background work of a running server: the outbox worker and the deadline sweep. Both stop
//! gracefully: when the server is stopping, the outbox senders finish the email in hand and
//! claim no other, and the sweep finishes the case in hand.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;

use tokio::sync::Notify;

use crate::db::{self, DbPool};
use crate::mail::outbox::{self, Mailer, Stopping};
use crate::services::Services;

/// What the background jobs work with: the database, the use cases, and the bell that says
/// mail was queued. Nothing of the web's.
#[derive(Clone)]
pub struct JobContext {
    pub pool: DbPool,
    pub services: Arc<Services>,
    pub outbox_wake: Arc<Notify>,
}

/// Delivers the outbox whenever something is queued, and at least every `poll` otherwise (for
/// retries, and for mail queued by another process), until `stop` is set.
pub async fn outbox_worker(state: JobContext, mailer: Arc<Mailer>, poll: Duration, stop: Stopping) {
    while !stop.load(Ordering::Relaxed) {
        match outbox::deliver_due(&state.pool, &mailer, Some(&stop)).await {
            Ok(report) if report.sent + report.retrying + report.failed > 0 => {
                tracing::info!(
                    sent = report.sent,
                    retrying = report.retrying,
                    failed = report.failed,
                    "outbox pass"
                );
            }
            Ok(_) => {}
            Err(e) => tracing::error!(error = %e, "outbox pass failed"),
        }
        if stop.load(Ordering::Relaxed) {
            break;
        }
        let _ = tokio::time::timeout(poll, state.outbox_wake.notified()).await;
    }
}

/// Sweeps deadlines every `every`, with the real clock, until `stop` is set (and `halt`
/// notified, to end the wait between sweeps).
pub async fn sweeper(state: JobContext, every: Duration, stop: Stopping, halt: Arc<Notify>) {
    let mut ticker = tokio::time::interval(every);
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = halt.notified() => {}
        }
        if stop.load(Ordering::Relaxed) {
            break;
        }
        let svc = state.services.clone();
        let flag = stop.clone();
        let swept = db::run(&state.pool, move |conn| {
            crate::services::sweep_until(conn, &svc, Utc::now(), Some(&*flag))
        })
        .await;
        match swept {
            Ok(report) => {
                if !report.closed.is_empty() || !report.marked_overdue.is_empty() || report.failed > 0 {
                    tracing::info!(closed = ?report.closed, overdue = ?report.marked_overdue, failed = report.failed, "deadline sweep");
                }
                state.outbox_wake.notify_one();
            }
            Err(e) => tracing::error!(error = %e, "deadline sweep failed"),
        }
    }
}
