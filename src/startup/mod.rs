//! `Application::build` wires settings, store, keys and routes into a bound server. Building
//! connects to the database and runs migrations first: a service that cannot reach its store
//! refuses to start instead of limping along without it. What it serves is built in one place,
//! [`compose`].
//!
//! Shutdown (`Application::run_until_signalled`, what `sessiond serve` runs) is made for rolling
//! deploys: on SIGTERM or SIGINT `/readyz` turns 503 at once while everything is still served,
//! new connections included, for `server.shutdown_drain_secs`, so the load balancer stops
//! routing here; responses meanwhile ask clients not to keep the connection. Then the listener
//! stops accepting, event streams end (their consumers resume elsewhere with `Last-Event-ID`),
//! requests in flight get up to `server.shutdown_timeout_secs` to finish, background tasks stop
//! and the pool closes. A request cut off by the timeout loses only its connection: every write
//! (a refresh rotation included) is one transaction, rolled back unless it committed.

use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::{Server, ServerHandle};
use actix_web::middleware::from_fn;
use actix_web::{App, HttpServer, web};
use anyhow::Context;
use tokio::task::JoinHandle;
use tracing_actix_web::TracingLogger;

pub mod compose;

use crate::clock::Clock;
use crate::config::Settings;
use crate::error::Error;
use crate::http::error::ApiError;
use crate::http::request_span::{RequestSpan, echo_request_id};
use crate::http::state::AppState;
use crate::http::{cors, routes};
use crate::services::maintenance;
use crate::store::Store;
use compose::Core;

pub struct Application {
    port: u16,
    server: Server,
    state: web::Data<AppState>,
    core: Arc<Core>,
    /// Background tasks (upkeep, announcement listener, event tail), stopped with the server.
    tasks: Vec<JoinHandle<()>>,
}

impl Application {
    pub async fn build(settings: Settings) -> anyhow::Result<Application> {
        settings.cors.validate()?;
        settings.cookies.validate()?;
        let store = Store::connect(&settings.database).await.with_context(|| {
            format!(
                "cannot reach the database at {}",
                settings.database.redacted_url()
            )
        })?;
        store.migrate().await?;
        let listener = TcpListener::bind((settings.server.host.as_str(), settings.server.port))
            .with_context(|| format!("cannot listen on port {}", settings.server.port))?;
        let port = listener.local_addr()?.port();
        let workers = settings.server.workers;
        let core = Arc::new(Core::build(settings, store, Clock::system()).await?);
        let services = core.services();
        // Ready from the first request: the database answered just now.
        services.health.check_readiness().await;
        let mut tasks = maintenance::spawn(services.upkeep.clone());
        tasks.push(tokio::spawn(core.announcement_bus().run()));
        tasks.push(tokio::spawn(core.events.clone().run()));
        tasks.push(tokio::spawn(core.mail_sender.clone().run()));
        let state = web::Data::new(AppState::new(
            services,
            &core.settings,
            core.events.clone(),
            core.metrics.clone(),
        ));
        let server = serve(listener, state.clone(), workers)?;
        Ok(Application {
            port,
            server,
            state,
            core,
            tasks,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn handle(&self) -> ServerHandle {
        self.server.handle()
    }

    pub fn state(&self) -> web::Data<AppState> {
        self.state.clone()
    }

    /// The core parts this instance was built from.
    pub fn core(&self) -> Arc<Core> {
        self.core.clone()
    }

    /// Serves until stopped through [`Application::handle`], then stops the background tasks
    /// and closes the pool.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let result = self.server.await;
        finish(&self.core, self.tasks).await;
        result
    }

    /// Serves until SIGTERM or SIGINT, then shuts down gracefully (see the module docs).
    pub async fn run_until_signalled(self) -> anyhow::Result<()> {
        let signals = Signals::install()?;
        let stopping = tokio::spawn(shut_down_on_signal(
            signals,
            self.server.handle(),
            self.state.clone(),
        ));
        let result = self.server.await;
        stopping.abort();
        finish(&self.core, self.tasks).await;
        tracing::info!("stopped");
        Ok(result?)
    }
}

/// After the server has stopped: no background task outlives it, then the pool closes.
async fn finish(core: &Core, tasks: Vec<JoinHandle<()>>) {
    for task in &tasks {
        task.abort();
    }
    for task in tasks {
        let _ = task.await;
    }
    core.store.close().await;
}

/// Waits for the first signal, drains, then stops the server gracefully.
async fn shut_down_on_signal(
    mut signals: Signals,
    server: ServerHandle,
    state: web::Data<AppState>,
) {
    let signal = signals.next().await;
    state.begin_shutdown();
    let settings = &state.settings.server;
    let drain = Duration::from_secs(settings.shutdown_drain_secs);
    tracing::info!(
        signal,
        drain_secs = settings.shutdown_drain_secs,
        "shutting down: /readyz is 503, still serving while the load balancer notices"
    );
    tokio::select! {
        _ = tokio::time::sleep(drain) => {}
        signal = signals.next() => tracing::info!(signal, "second signal: the drain ends now"),
    }
    tracing::info!(
        timeout_secs = settings.shutdown_timeout_secs,
        "no longer accepting connections; finishing the requests in flight"
    );
    state.events.close();
    server.stop(true).await;
}

/// SIGTERM (what orchestrators and `docker stop` send) and SIGINT (Ctrl-C).
struct Signals {
    #[cfg(unix)]
    term: tokio::signal::unix::Signal,
    #[cfg(unix)]
    int: tokio::signal::unix::Signal,
}

impl Signals {
    /// Installed before serving, so a signal that comes early is not lost.
    fn install() -> anyhow::Result<Signals> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            Ok(Signals {
                term: signal(SignalKind::terminate()).context("Failed to handle SIGTERM")?,
                int: signal(SignalKind::interrupt()).context("Failed to handle SIGINT")?,
            })
        }
        #[cfg(not(unix))]
        Ok(Signals {})
    }

    async fn next(&mut self) -> &'static str {
        #[cfg(unix)]
        {
            tokio::select! {
                _ = self.term.recv() => "SIGTERM",
                _ = self.int.recv() => "SIGINT",
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
            "ctrl-c"
        }
    }
}

fn serve(
    listener: TcpListener,
    state: web::Data<AppState>,
    workers: usize,
) -> anyhow::Result<Server> {
    let cors = state.settings.cors.clone();
    let shutdown_timeout = state.settings.server.shutdown_timeout_secs;
    let mut server =
        HttpServer::new(move || {
            App::new()
                .wrap(from_fn(routes::head_as_get))
                .wrap(from_fn(crate::http::metrics::record))
                .wrap(from_fn(echo_request_id))
                .wrap(TracingLogger::<RequestSpan>::new())
                // Outermost: preflights are answered before anything else runs.
                .wrap(cors::middleware(&cors))
                .app_data(state.clone())
                .app_data(web::QueryConfig::default().error_handler(|err, _| {
                    ApiError::InvalidRequest(format!("invalid query: {err}")).into()
                }))
                .app_data(web::PathConfig::default().error_handler(|_, _| {
                    ApiError::from(Error::NotFound("no such resource")).into()
                }))
                .configure(routes::configure)
                .default_service(web::to(routes::not_found))
        })
        // Signals are ours (`run_until_signalled`): actix's own handling would stop accepting
        // at once, before the load balancer has noticed.
        .disable_signals()
        .shutdown_timeout(shutdown_timeout)
        .client_request_timeout(Duration::from_secs(10))
        // A client that closes its side is gone: stop its request at once, so that (for
        // example) its queued password hash is skipped rather than computed for nobody.
        .h1_allow_half_closed(false);
    if workers > 0 {
        server = server.workers(workers);
    }
    Ok(server.listen(listener)?.run())
}
