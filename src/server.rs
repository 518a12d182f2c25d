//! Putting the pieces together: state, HTTP server and workers.

use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use actix_web::{middleware, web, App, HttpServer};
use tokio::sync::Notify;

use crate::config::Config;
use crate::db::{self, DbPool};
use crate::mail::outbox::Mailer;
use crate::mail::EmailTemplates;
use crate::services::Services;
use crate::web::{pages::Pages, AppState};

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Db(#[from] db::DbSetupError),
    #[error("{0}")]
    Setup(String),
    #[error("cannot listen: {0}")]
    Io(#[from] std::io::Error),
}

pub fn services(config: &Config) -> Result<Services, StartError> {
    let emails = EmailTemplates::load(config.email_templates.as_deref())
        .map_err(|e| StartError::Setup(e.to_string()))?;
    let broken = crate::services::check_email_templates(&emails);
    if !broken.is_empty() {
        return Err(StartError::Setup(format!(
            "{}. Correct the templates in REDRESS_EMAIL_TEMPLATES and start again.",
            broken.join("; ")
        )));
    }
    Ok(Services { base_url: config.base_url.clone(), emails })
}

pub fn state(config: &Config, pool: DbPool) -> Result<AppState, StartError> {
    Ok(AppState {
        pool,
        services: Arc::new(services(config)?),
        pages: Arc::new(Pages::load().map_err(StartError::Setup)?),
        outbox_wake: Arc::new(Notify::new()),
        secure_cookies: config.base_url.starts_with("https://"),
        trust_proxy: config.trust_proxy,
        limits: Arc::new(crate::security::Limits::default()),
        hash_pool: Arc::new(crate::security::HashPool::for_this_machine()),
    })
}

/// Opens the database (migrating it), starts the workers and serves HTTP on `listener` until
/// the server stops.
pub async fn run(config: Config, listener: TcpListener) -> Result<(), StartError> {
    run_with(config, listener, None).await
}

/// As `run`, handing the server's handle to `started` so that whoever started it can stop it.
pub async fn run_with(
    config: Config,
    listener: TcpListener,
    started: Option<std::sync::mpsc::Sender<actix_web::dev::ServerHandle>>,
) -> Result<(), StartError> {
    let pool = db::connect(&config.database_url, 8)?;
    let state = state(&config, pool)?;
    let mailer = Arc::new(Mailer::from_config(&config).map_err(|e| StartError::Setup(e.to_string()))?);
    let stop = crate::mail::outbox::Stopping::default();
    let jobs = crate::jobs::JobContext {
        pool: state.pool.clone(),
        services: state.services.clone(),
        outbox_wake: state.outbox_wake.clone(),
    };
    let worker = actix_web::rt::spawn(crate::jobs::outbox_worker(
        jobs.clone(),
        mailer,
        Duration::from_secs(config.outbox_poll_secs),
        stop.clone(),
    ));
    let halt = Arc::new(Notify::new());
    let sweeper = actix_web::rt::spawn(crate::jobs::sweeper(
        jobs,
        Duration::from_secs(config.sweep_interval_secs),
        stop.clone(),
        halt.clone(),
    ));
    let wake = state.outbox_wake.clone();
    let https = state.secure_cookies;
    let data = web::Data::new(state);
    tracing::info!(address = %listener.local_addr()?, base_url = %config.base_url, "Redress is listening");
    let server = HttpServer::new(move || {
        App::new()
            .app_data(data.clone())
            // The last wrapped runs first: the headers go on every response, including the
            // ones the edge answers itself; the edge logs the answer that is finally sent,
            // after an error without a body has been given its page.
            .wrap(middleware::from_fn(crate::web::fallback::error_bodies))
            .wrap(middleware::from_fn(crate::web::edge::edge))
            .wrap(crate::web::headers::defaults(https))
            .configure(crate::web::configure)
    })
    .listen(listener)?
    .run();
    if let Some(started) = started {
        let _ = started.send(server.handle());
    }
    // On SIGTERM or SIGINT actix stops taking connections and lets requests in flight finish.
    let result = server.await;
    // Then the workers: each sender finishes the email in hand (bounded by the send timeout)
    // and records it, and the sweep the case in hand; none takes more. Only one still busy
    // after that is cancelled; what it had claimed waits out its lease.
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    wake.notify_one();
    halt.notify_one();
    let grace = Duration::from_secs(config.smtp_timeout_secs + crate::config::LEASE_MARGIN_SECS);
    for (name, mut job) in [("outbox worker", worker), ("deadline sweep", sweeper)] {
        if tokio::time::timeout(grace, &mut job).await.is_err() {
            tracing::warn!(job = name, "did not stop in time; cancelled");
            job.abort();
            let _ = job.await;
        }
    }
    tracing::info!("Redress has stopped");
    Ok(result?)
}
