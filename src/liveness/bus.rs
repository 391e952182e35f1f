//! The announcement bus: one PostgreSQL `LISTEN` connection per instance, and what each
//! announcement means here. Ended or changed sessions (`ENDED_SESSIONS_CHANNEL`) drop out of
//! the gate's snapshot cache; a committed session event (`EVENTS_CHANNEL`) wakes the event
//! feed; a signing-key change (`SIGNING_KEYS_CHANNEL`) wakes the key ring. A connection can die
//! without an error (an idle NAT entry dropped, a hung proxy), so the instance announces a
//! heartbeat to itself every `HEARTBEAT_EVERY` through the same database and counts itself as
//! listening only while it hears them; the gate trusts its cache for long only then. SQLite
//! has no announcements: the bus does nothing there, and everything polls.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::Notify;

use crate::liveness::gate::SessionGate;
use crate::store::{
    ENDED_SESSIONS_CHANNEL, EVENTS_CHANNEL, SIGNING_KEYS_CHANNEL, Store, StoreError, StoreResult,
};

/// How often an instance announces a heartbeat to its own listener.
const HEARTBEAT_EVERY: Duration = Duration::from_millis(250);
/// Silence after which the listener counts as lost: one heartbeat missed, plus scheduling slack.
const HEARTBEAT_LOST_AFTER: Duration = Duration::from_millis(600);
/// How long connecting the listener (and hearing the first heartbeat) may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const RECONNECT_PAUSE: Duration = Duration::from_millis(500);

/// Who hears what the bus hears.
pub struct AnnouncementBus {
    store: Store,
    gate: Arc<SessionGate>,
    /// Woken when a session event was committed (the event feed reads it at once).
    events_committed: Arc<Notify>,
    /// Woken when the signing keys changed, or may have changed while nobody listened.
    keys_changed: Arc<Notify>,
}

impl AnnouncementBus {
    pub fn new(
        store: Store,
        gate: Arc<SessionGate>,
        events_committed: Arc<Notify>,
        keys_changed: Arc<Notify>,
    ) -> AnnouncementBus {
        AnnouncementBus {
            store,
            gate,
            events_committed,
            keys_changed,
        }
    }

    /// Follows announcements for as long as the process runs (PostgreSQL only). Reconnects by
    /// itself; the gate empties its cache whenever the bus may have missed something.
    pub async fn run(self) {
        if !self.store.announces() {
            return;
        }
        loop {
            match self.listen_until_lost().await {
                Ok(()) => tracing::warn!("lost the session announcement listener; reconnecting"),
                Err(error) => {
                    tracing::warn!(error = %error, "session announcement listener failed")
                }
            }
            self.gate.set_listening(false);
            tokio::time::sleep(RECONNECT_PAUSE).await;
        }
    }

    /// Listens until the connection fails or goes silent. Until the first heartbeat arrives,
    /// and once one is missed, the gate counts the instance as not listening.
    async fn listen_until_lost(&self) -> StoreResult<()> {
        let heartbeat_channel = format!("sessiond_heartbeat_{}", uuid::Uuid::new_v4().simple());
        let channels = [
            ENDED_SESSIONS_CHANNEL,
            EVENTS_CHANNEL,
            SIGNING_KEYS_CHANNEL,
            &heartbeat_channel,
        ];
        let subscribed = tokio::time::timeout(CONNECT_TIMEOUT, self.store.subscribe(&channels))
            .await
            .map_err(|_| StoreError::timed_out())??;
        let Some(mut listener) = subscribed else {
            return Ok(());
        };
        // The listener runs in its own task and hands notifications over a channel, so that
        // giving up on a silent connection never cancels a half-read message.
        let (sender, mut heard) = tokio::sync::mpsc::unbounded_channel();
        let receiving = AbortOnDrop(tokio::spawn(async move {
            loop {
                let next = listener.recv().await;
                let lost = !matches!(next, Ok(Some(_)));
                if sender.send(next).is_err() || lost {
                    return;
                }
            }
        }));
        let beating = AbortOnDrop(tokio::spawn(send_heartbeats(
            self.store.clone(),
            heartbeat_channel.clone(),
        )));
        let mut last_beat: Option<Instant> = None;
        let connected = Instant::now();
        let mut check = tokio::time::interval(HEARTBEAT_EVERY);
        loop {
            tokio::select! {
                next = heard.recv() => {
                    let Some(notification) = next.transpose()?.flatten() else {
                        return Ok(());
                    };
                    if notification.channel == EVENTS_CHANNEL {
                        self.events_committed.notify_one();
                    } else if notification.channel == SIGNING_KEYS_CHANNEL {
                        self.keys_changed.notify_one();
                    } else if notification.channel != heartbeat_channel {
                        self.gate.announced(&notification.payload);
                    } else if last_beat.replace(Instant::now()).is_none() {
                        // Anything cached before we could hear may have missed an announcement.
                        self.gate.set_listening(true);
                        self.keys_changed.notify_one();
                        tracing::info!("following ended-session announcements");
                    }
                }
                _ = check.tick() => {
                    let silent_since = last_beat.unwrap_or(connected);
                    let patience = if last_beat.is_some() { HEARTBEAT_LOST_AFTER } else { CONNECT_TIMEOUT };
                    if silent_since.elapsed() > patience {
                        tracing::warn!("no heartbeat through the announcement listener");
                        drop((receiving, beating));
                        return Ok(());
                    }
                }
            }
        }
    }
}

/// Announces a heartbeat on `channel` every `HEARTBEAT_EVERY` until aborted. A send that hangs
/// is abandoned: the missing heartbeat is exactly what the listener should notice.
async fn send_heartbeats(store: Store, channel: String) {
    let mut every = tokio::time::interval(HEARTBEAT_EVERY);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        every.tick().await;
        let sent = tokio::time::timeout(HEARTBEAT_EVERY, store.notify(&channel, "")).await;
        if let Ok(Err(error)) = sent {
            tracing::debug!(error = %error, "heartbeat not sent");
        }
    }
}

/// Aborts a spawned task when dropped, so no task outlives the listener it serves.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
