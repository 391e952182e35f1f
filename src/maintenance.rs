//! Background upkeep, each on its own timer so requests never wait for it: re-reading the
//! signing keys (to follow a rotation or a revocation made by another instance or the CLI) and
//! deleting ended sessions in small batches so the tables do not grow without bound.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::task::JoinHandle;

use crate::clock;
use crate::state::AppState;

/// Ended sessions are kept this long for the owner's and admins' audit trail, then deleted.
const RETENTION_SECS: i64 = 7 * 24 * 3600;
const PURGE_BATCH: i64 = 500;
const PURGE_EVERY: Duration = Duration::from_secs(60);
/// Revoking a service key on one instance reaches the others within this time.
const SERVICE_KEYS_EVERY: Duration = Duration::from_secs(10);
/// An instance that is not told of key changes (SQLite, or a PostgreSQL listener that is down)
/// looks at the key table's fingerprint this often: a revoked key stops verifying within it.
const KEYS_POLL_EVERY: Duration = Duration::from_millis(500);

/// Starts the upkeep tasks; the caller aborts them at shutdown.
pub fn spawn(state: Arc<AppState>) -> Vec<JoinHandle<()>> {
    let keys_state = state.clone();
    let keys = tokio::spawn(follow_signing_keys(keys_state));
    let keys_state = state.clone();
    let service_keys = tokio::spawn(async move {
        let mut timer = tokio::time::interval(SERVICE_KEYS_EVERY);
        loop {
            timer.tick().await;
            if let Err(error) = keys_state.service_keys.reload().await {
                tracing::warn!(error = ?error, "could not re-read service keys");
            }
        }
    });
    let purge = tokio::spawn(async move {
        let mut timer = tokio::time::interval(PURGE_EVERY);
        loop {
            timer.tick().await;
            purge_ended_sessions(&state).await;
            purge_expired_tickets(&state).await;
            purge_old_events(&state).await;
            state.rate_limits.tidy();
        }
    });
    vec![keys, service_keys, purge]
}

/// Re-reads the signing keys: when told they changed (PostgreSQL announces every change), when
/// their fingerprint moved (polled while nobody can tell us), and every `key_reload_secs`
/// regardless (retired keys age out of the ring).
async fn follow_signing_keys(state: Arc<AppState>) {
    let keys = state.tokens.keys().clone();
    let changed = keys.changes();
    let every = Duration::from_secs(state.settings.tokens.key_reload_secs.max(1));
    let mut last_full = Instant::now();
    let mut poll = tokio::time::interval(KEYS_POLL_EVERY);
    poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let told = tokio::select! {
            _ = changed.notified() => true,
            _ = poll.tick() => false,
        };
        let reloaded = if told || last_full.elapsed() >= every {
            last_full = Instant::now();
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
async fn purge_expired_tickets(state: &AppState) {
    loop {
        match state
            .store
            .purge_ws_tickets(clock::now(), PURGE_BATCH)
            .await
        {
            Ok(0) => break,
            Ok(_) => tokio::task::yield_now().await,
            Err(error) => {
                tracing::warn!(error = ?error, "could not purge expired tickets");
                break;
            }
        }
    }
}

/// Session events older than their retention, in batches.
pub async fn purge_old_events(state: &AppState) -> u64 {
    let cutoff = clock::now() - state.settings.events.retention_secs;
    let mut total = 0;
    loop {
        match state.store.purge_events(cutoff, PURGE_BATCH).await {
            Ok(0) => break,
            Ok(n) => {
                total += n;
                tokio::task::yield_now().await;
            }
            Err(error) => {
                tracing::warn!(error = ?error, "could not purge session events");
                break;
            }
        }
    }
    total
}

/// Deletes batch after batch until none is left, yielding between batches.
pub async fn purge_ended_sessions(state: &AppState) -> u64 {
    let cutoff = clock::now() - RETENTION_SECS;
    let mut total = 0;
    loop {
        match state.store.purge_ended_sessions(cutoff, PURGE_BATCH).await {
            Ok(0) => break,
            Ok(n) => {
                total += n;
                tokio::task::yield_now().await;
            }
            Err(error) => {
                tracing::warn!(error = ?error, "could not purge ended sessions");
                break;
            }
        }
    }
    if total > 0 {
        tracing::info!(deleted = total, "purged ended sessions");
    }
    total
}
