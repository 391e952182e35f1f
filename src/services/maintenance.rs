//! Background upkeep, each on its own timer so requests never wait for it: re-reading the
//! signing keys (to follow a rotation or a revocation made by another instance or the CLI) and
//! deleting ended sessions in small batches so the tables do not grow without bound.

use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinHandle;

use super::health::Health;
use crate::clock::Clock;
use crate::config::Settings;
use crate::credentials::service_keys::ServiceKeys;
use crate::credentials::tokens::KeyRing;
use crate::limits::rate_limit::RateLimits;
use crate::liveness::gate::SessionGate;
use crate::store::Store;

/// Ended sessions are kept this long for the owner's and admins' audit trail, then deleted.
const RETENTION_SECS: i64 = 7 * 24 * 3600;
const PURGE_BATCH: i64 = 500;
/// Abandoned guests deleted per purge run at most (every `PURGE_EVERY`).
const GUESTS_PER_RUN: i64 = 5000;
const PURGE_EVERY: Duration = Duration::from_secs(60);
/// Revoking a service key on one instance reaches the others within this time.
const SERVICE_KEYS_EVERY: Duration = Duration::from_millis(500);
/// An instance that is not told of key changes (SQLite, or a PostgreSQL listener that is down)
/// looks at the key table's fingerprint this often: a revoked key stops verifying within it.
const KEYS_POLL_EVERY: Duration = Duration::from_millis(500);

/// How long what the upkeep deletes is kept, and how often keys are re-read regardless.
#[derive(Debug, Clone, Copy)]
pub struct Retention {
    pub idle_timeout_secs: i64,
    pub abandoned_guest_secs: i64,
    pub audit_secs: i64,
    pub events_secs: i64,
    pub throttle_window_secs: i64,
    pub key_reload_secs: u64,
    pub mail_sent_secs: i64,
}

impl Retention {
    pub fn from_settings(settings: &Settings) -> Retention {
        Retention {
            idle_timeout_secs: settings.sessions.idle_timeout_secs,
            abandoned_guest_secs: settings.sessions.abandoned_guest_secs,
            audit_secs: settings.audit.retention_secs,
            events_secs: settings.events.retention_secs,
            throttle_window_secs: settings.throttle.window_secs,
            key_reload_secs: settings.tokens.key_reload_secs,
            mail_sent_secs: settings.mail.sent_retention_secs,
        }
    }
}

/// The background upkeep of one instance.
pub struct Upkeep {
    store: Store,
    clock: Clock,
    retention: Retention,
    keys: Arc<KeyRing>,
    service_keys: Arc<ServiceKeys>,
    rate_limits: Arc<RateLimits>,
    /// Whether key changes are announced (else their fingerprint is polled).
    gate: Arc<SessionGate>,
    health: Arc<Health>,
}

/// What [`Upkeep`] is built from.
pub struct UpkeepParts {
    pub store: Store,
    pub clock: Clock,
    pub retention: Retention,
    pub keys: Arc<KeyRing>,
    pub service_keys: Arc<ServiceKeys>,
    pub rate_limits: Arc<RateLimits>,
    pub gate: Arc<SessionGate>,
    pub health: Arc<Health>,
}

impl Upkeep {
    pub fn new(parts: UpkeepParts) -> Upkeep {
        let UpkeepParts {
            store,
            clock,
            retention,
            keys,
            service_keys,
            rate_limits,
            gate,
            health,
        } = parts;
        Upkeep {
            store,
            clock,
            retention,
            keys,
            service_keys,
            rate_limits,
            gate,
            health,
        }
    }
}

/// Starts the upkeep tasks; the caller aborts them at shutdown.
pub fn spawn(state: Arc<Upkeep>) -> Vec<JoinHandle<()>> {
    let keys_state = state.clone();
    let keys = tokio::spawn(follow_signing_keys(keys_state));
    let keys_state = state.clone();
    let service_keys = tokio::spawn(async move {
        let mut timer = tokio::time::interval(SERVICE_KEYS_EVERY);
        let mut failing = false;
        loop {
            timer.tick().await;
            match keys_state.service_keys.reload().await {
                // Once per outage, not twice a second.
                Err(error) if !failing => {
                    tracing::warn!(error = ?error, "could not re-read service keys");
                    failing = true;
                }
                Err(_) => {}
                Ok(()) => failing = false,
            }
        }
    });
    let ready_state = state.clone();
    let readiness = tokio::spawn(async move {
        let mut timer = tokio::time::interval(super::readiness::CHECK_EVERY);
        timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            timer.tick().await;
            ready_state.health.check_readiness().await;
        }
    });
    let purge = tokio::spawn(async move {
        let mut timer = tokio::time::interval(PURGE_EVERY);
        loop {
            timer.tick().await;
            purge_ended_sessions(&state).await;
            purge_expired_tickets(&state).await;
            purge_old_events(&state).await;
            purge_abandoned_guests(&state).await;
            purge_old_audit_events(&state).await;
            purge_spent_limits(&state).await;
            purge_mail(&state).await;
            purge_challenges(&state).await;
            state.rate_limits.tidy(state.clock.now());
        }
    });
    vec![keys, service_keys, readiness, purge]
}

/// Re-reads the signing keys: when told they changed (PostgreSQL announces every change), when
/// their fingerprint moved (polled while nobody can tell us), and every `key_reload_secs`
/// regardless (retired keys age out of the ring).
async fn follow_signing_keys(state: Arc<Upkeep>) {
    let keys = state.keys.clone();
    let changed = keys.changes();
    let every_secs = i64::try_from(state.retention.key_reload_secs.max(1)).unwrap_or(i64::MAX);
    let mut last_full = state.clock.now();
    let mut poll = tokio::time::interval(KEYS_POLL_EVERY);
    poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let told = tokio::select! {
            _ = changed.notified() => true,
            _ = poll.tick() => false,
        };
        let now = state.clock.now();
        let reloaded = if told || now - last_full >= every_secs {
            last_full = now;
            keys.reload().await
        } else if !state.gate.is_listening() {
            keys.reload_if_changed().await
        } else {
            Ok(())
        };
        if let Err(error) = reloaded {
            tracing::warn!(error = ?error, "could not re-read signing keys");
        }
    }
}

/// Expired WebSocket tickets are useless; delete them in batches too.
async fn purge_expired_tickets(state: &Upkeep) -> u64 {
    let now = state.clock.now();
    in_batches("expired tickets", || {
        state.store.purge_ws_tickets(now, PURGE_BATCH)
    })
    .await
}

/// Runs one purge step batch after batch until it deletes nothing (or fails), yielding in
/// between so requests never wait behind a long delete; returns how many rows went.
async fn in_batches<F, Fut>(what: &str, mut step: F) -> u64
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = crate::store::StoreResult<u64>>,
{
    let mut total = 0;
    loop {
        match step().await {
            Ok(0) => break,
            Ok(n) => {
                total += n;
                tokio::task::yield_now().await;
            }
            Err(error) => {
                tracing::warn!(error = ?error, "could not purge {what}");
                break;
            }
        }
    }
    total
}

/// Guest users that have no live session and were created over `abandoned_guest_secs` ago,
/// with their rows. At most `GUESTS_PER_RUN` per run, so a backlog is worked off gradually.
pub async fn purge_abandoned_guests(state: &Upkeep) -> u64 {
    let retention = state.retention;
    let now = state.clock.now();
    let created_before = now - retention.abandoned_guest_secs;
    let mut budget = GUESTS_PER_RUN;
    let deleted = in_batches("abandoned guests", || {
        let batch = budget.min(PURGE_BATCH);
        budget -= batch;
        let store = &state.store;
        async move {
            if batch == 0 {
                return Ok(0);
            }
            store
                .purge_abandoned_guests(now, created_before, retention.idle_timeout_secs, batch)
                .await
        }
    })
    .await;
    if deleted > 0 {
        tracing::info!(deleted, "purged abandoned guest users");
    }
    deleted
}

/// Audit events older than `audit.retention_secs`.
pub async fn purge_old_audit_events(state: &Upkeep) -> u64 {
    let cutoff = state.clock.now() - state.retention.audit_secs;
    in_batches("audit events", || {
        state.store.purge_audit_events(cutoff, PURGE_BATCH)
    })
    .await
}

/// Login throttle counters and rate windows that no longer limit anything.
async fn purge_spent_limits(state: &Upkeep) -> u64 {
    let now = state.clock.now();
    let window_start = now - state.retention.throttle_window_secs;
    in_batches("limit counters", || {
        state.store.purge_limits(now, window_start, PURGE_BATCH)
    })
    .await
}

/// Sent mail past its retention, and mailed tokens spent or expired.
pub async fn purge_mail(state: &Upkeep) -> u64 {
    let now = state.clock.now();
    let cutoff = now - state.retention.mail_sent_secs;
    in_batches("mail", || state.store.purge_mail(cutoff, now, PURGE_BATCH)).await
}

/// Login challenges (`mfa_token`s) and WebAuthn ceremonies past their lifetime.
pub async fn purge_challenges(state: &Upkeep) -> u64 {
    let now = state.clock.now();
    in_batches("challenges", || state.store.purge_challenges(now)).await
}

/// Session events older than their retention, in batches.
pub async fn purge_old_events(state: &Upkeep) -> u64 {
    let cutoff = state.clock.now() - state.retention.events_secs;
    in_batches("session events", || {
        state.store.purge_events(cutoff, PURGE_BATCH)
    })
    .await
}

/// Deletes batch after batch until none is left, yielding between batches.
pub async fn purge_ended_sessions(state: &Upkeep) -> u64 {
    let cutoff = state.clock.now() - RETENTION_SECS;
    let total = in_batches("ended sessions", || {
        state.store.purge_ended_sessions(cutoff, PURGE_BATCH)
    })
    .await;
    if total > 0 {
        tracing::info!(deleted = total, "purged ended sessions");
    }
    total
}
