//! The service's operations, one file per capability: what signup, login, a refresh or ending
//! a session *does*, independent of HTTP. Each operation owns its steps (validate, limit,
//! write through the store, tell the gate, audit) so a caller cannot forget one; `http/` only
//! reads requests and renders answers.
//!
//! [`Services`] is built once per process and holds the core parts privately: handlers go
//! through the operations. The few accessors below hand out what startup (the gate's listener,
//! the event tail), discovery (the public keys) and metrics need to read.

pub mod accounts;
pub mod admin;
pub mod bridge;
mod credentials;
pub mod ending;
pub mod login;
pub mod maintenance;
pub mod readiness;
pub mod sessions;
pub mod tickets;

// What the HTTP layer needs from the core, named here so that `http/` depends on services alone.
pub use crate::credentials::service_keys::Caller;
pub use crate::liveness::events::{EventFeed, PAGE, PublishedEvent};
pub use crate::observability::metrics::Metrics;

use std::sync::Arc;

use serde_json::Value;

use crate::clock::Clock;
use crate::config::Settings;
use crate::credentials::bridge::Bridge;
use crate::credentials::passwords::PasswordHasher;
use crate::credentials::service_keys::ServiceKeys;
use crate::credentials::tokens::AccessTokens;
use crate::limits::rate_limit::RateLimits;
use crate::limits::throttle::LoginThrottle;
use crate::liveness::bus::AnnouncementBus;
use crate::liveness::gate::{RecentlyEnded, SessionGate};
use crate::observability::audit::{self, AuditSubject, Event};
use crate::store::Store;

pub struct Services {
    settings: Settings,
    store: Store,
    clock: Clock,
    tokens: AccessTokens,
    hasher: PasswordHasher,
    gate: Arc<SessionGate>,
    events: Arc<EventFeed>,
    service_keys: ServiceKeys,
    metrics: Arc<Metrics>,
    bridge: Bridge,
    rate_limits: RateLimits,
    throttle: LoginThrottle,
    readiness: readiness::Readiness,
}

impl Services {
    pub async fn build(settings: Settings, store: Store, clock: Clock) -> anyhow::Result<Services> {
        let cache_entries = settings.tokens.verified_cache_entries;
        let tokens =
            AccessTokens::load(store.clone(), clock.clone(), &settings, cache_entries).await?;
        let hasher = PasswordHasher::new(&settings.passwords)?;
        let recently_ended = Arc::new(RecentlyEnded::new(
            clock.clone(),
            settings.tokens.access_ttl_secs,
        ));
        let events = Arc::new(EventFeed::new(
            store.clone(),
            clock.clone(),
            recently_ended.clone(),
            settings.events.consumer_ring,
            std::time::Duration::from_millis(settings.events.poll_interval_ms.max(10)),
        ));
        events.start().await?;
        let gate = Arc::new(SessionGate::new(
            store.clone(),
            settings.sessions.idle_timeout_secs,
            settings.database.acquire_timeout(),
            settings.sessions.cache_entries,
            recently_ended,
            events.waker(),
        ));
        let bridge = Bridge::new(&settings.bridge, &clock)?;
        let rate_limits = RateLimits::new(&settings.rate_limits, store.clone());
        let throttle = LoginThrottle::new(store.clone(), settings.throttle.clone());
        let service_keys =
            ServiceKeys::load(store.clone(), clock.clone(), &settings.service_keys).await?;
        let services = Services {
            settings,
            store,
            clock,
            tokens,
            hasher,
            gate,
            events,
            service_keys,
            metrics: Arc::new(Metrics::new()),
            bridge,
            rate_limits,
            throttle,
            readiness: readiness::Readiness::default(),
        };
        // Ready from the first request: the database answered just now.
        services.check_readiness().await;
        Ok(services)
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// The session event feed, for consumers that follow it.
    pub fn events(&self) -> &Arc<EventFeed> {
        &self.events
    }

    /// Access tokens: their verification keys are public (JWKS).
    pub fn tokens(&self) -> &AccessTokens {
        &self.tokens
    }

    /// The service key `key` stands for, if it is one.
    pub async fn service_caller(
        &self,
        key: &str,
    ) -> Option<crate::credentials::service_keys::Caller> {
        self.service_keys.authenticate(key).await
    }

    /// The announcement bus, wired to this instance's gate, event feed and key ring: run it
    /// once per process (startup does).
    pub fn announcement_bus(&self) -> AnnouncementBus {
        AnnouncementBus::new(
            self.store.clone(),
            self.gate.clone(),
            self.events.waker(),
            self.tokens.keys().changes(),
        )
    }

    pub fn gate(&self) -> &Arc<SessionGate> {
        &self.gate
    }

    /// The service keys this instance knows (re-read by maintenance).
    pub fn service_keys(&self) -> &ServiceKeys {
        &self.service_keys
    }

    /// The argon2 queue (its depth and abandoned jobs are metrics).
    pub fn hasher(&self) -> &PasswordHasher {
        &self.hasher
    }

    /// True when the database took a write within the last second (`/readyz`), as the
    /// periodic check found (see `readiness`).
    pub fn ready(&self) -> bool {
        self.readiness.is_ready()
    }

    /// Checks that the database takes writes (the periodic readiness check).
    pub async fn check_readiness(&self) {
        let check = tokio::time::timeout(readiness::CHECK_TIMEOUT, self.store.ping()).await;
        self.metrics.readiness_checks.inc();
        let ok = matches!(check, Ok(Ok(())));
        if !ok && self.readiness.is_ready() {
            tracing::warn!(timed_out = check.is_err(), "readiness check failed");
        }
        self.readiness.record(ok);
    }

    /// Closes the database pools (the last step of a shutdown).
    pub async fn close(&self) {
        self.store.close().await;
    }

    /// The metrics in Prometheus' text format, with the gauges read now.
    pub async fn render_metrics(&self) -> Vec<u8> {
        let now = self.clock.now();
        let idle = self.settings.sessions.idle_timeout_secs;
        self.metrics
            .render(&self.hasher, &self.gate, self.events.head(), || {
                self.store.count_live_sessions(now, idle)
            })
            .await
    }

    /// Records an audit event (never fails the operation it describes).
    async fn audit(&self, event: Event, subject: AuditSubject<'_>, detail: Value) {
        audit::record(&self.store, self.clock.now(), event, subject, detail).await;
    }
}
