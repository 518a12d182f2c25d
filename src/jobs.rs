//! Background work of a running server: the outbox worker and the deadline sweep.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;

use crate::db;
use crate::mail::outbox::{self, Mailer};
use crate::web::AppState;

/// Delivers the outbox whenever something is queued, and at least every `poll` otherwise (for
/// retries, and for mail queued by another process).
pub async fn outbox_worker(state: AppState, mailer: Arc<Mailer>, poll: Duration) {
    loop {
        match outbox::deliver_due(&state.pool, &mailer).await {
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
        let _ = tokio::time::timeout(poll, state.outbox_wake.notified()).await;
    }
}

/// Sweeps deadlines every `every`, with the real clock.
pub async fn sweeper(state: AppState, every: Duration) {
    let mut ticker = tokio::time::interval(every);
    loop {
        ticker.tick().await;
        let svc = state.services.clone();
        match db::run(&state.pool, move |conn| crate::services::sweep(conn, &svc, Utc::now())).await {
            Ok(report) => {
                if !report.closed.is_empty() || !report.marked_overdue.is_empty() {
                    tracing::info!(closed = ?report.closed, overdue = ?report.marked_overdue, "deadline sweep");
                    state.outbox_wake.notify_one();
                }
            }
            Err(e) => tracing::error!(error = %e, "deadline sweep failed"),
        }
    }
}
