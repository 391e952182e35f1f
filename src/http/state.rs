//! What every handler shares, built once at start-up and handed out as `web::Data<AppState>`:
//! the service's operations, the parts of the core the HTTP layer serves directly (the event
//! feed, the metrics), the HTTP settings as plain data, and whether this instance is shutting
//! down. Handlers read these fields; they do not look settings up through the services.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::config::{CookieSettings, CorsSettings, MetricsSettings, ServerSettings, Settings};
use crate::services::{EventFeed, Metrics, Services};

/// The settings the HTTP layer reads, copied out of [`Settings`] once at start.
#[derive(Debug, Clone)]
pub struct HttpSettings {
    pub server: ServerSettings,
    pub cookies: CookieSettings,
    pub cors: CorsSettings,
    pub metrics: MetricsSettings,
    /// How long a refresh cookie lives: as long as the longest session (a permanent one).
    pub refresh_cookie_max_age_secs: i64,
    /// Event streams one service key may hold open at once.
    pub max_event_streams_per_key: usize,
    /// Seconds between keep-alive comments on an event stream.
    pub event_keepalive_secs: u64,
}

impl HttpSettings {
    pub fn from_settings(settings: &Settings) -> HttpSettings {
        HttpSettings {
            server: settings.server.clone(),
            cookies: settings.cookies.clone(),
            cors: settings.cors.clone(),
            metrics: settings.metrics.clone(),
            refresh_cookie_max_age_secs: settings.sessions.permanent_ttl_secs,
            max_event_streams_per_key: settings.events.max_streams_per_key,
            event_keepalive_secs: settings.events.keepalive_secs,
        }
    }
}

pub struct AppState {
    pub services: Services,
    pub settings: HttpSettings,
    /// The session event feed `GET /v1/events` streams from.
    pub events: Arc<EventFeed>,
    /// Request counts and latencies, and the event-stream gauge.
    pub metrics: Arc<Metrics>,
    /// Set when a shutdown begins: `/readyz` answers 503 and connections are not kept alive.
    shutting_down: AtomicBool,
}

impl AppState {
    pub fn new(
        services: Services,
        settings: &Settings,
        events: Arc<EventFeed>,
        metrics: Arc<Metrics>,
    ) -> AppState {
        AppState {
            settings: HttpSettings::from_settings(settings),
            events,
            metrics,
            services,
            shutting_down: AtomicBool::new(false),
        }
    }

    pub fn is_shutting_down(&self) -> bool {
        self.shutting_down.load(Ordering::Relaxed)
    }

    /// The first step of a graceful shutdown: from now on `/readyz` is 503, so the load balancer
    /// stops sending new traffic, while everything is still served.
    pub fn begin_shutdown(&self) {
        self.shutting_down.store(true, Ordering::SeqCst);
    }
}
