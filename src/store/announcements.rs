//! PostgreSQL announcements (`LISTEN`/`NOTIFY`): how instances hear at once of what another
//! instance (or a trigger, or the operator's CLI) committed. The listener is a native
//! PostgreSQL connection the store opens itself, from its own URL; SQLite has none.

use std::sync::Arc;

use secrecy::{ExposeSecret, SecretString};
use sqlx::postgres::PgListener;

use super::{Backend, Store, StoreResult};

/// The PostgreSQL NOTIFY channel on which instances announce ended sessions (payload: ids,
/// comma-separated).
pub const ENDED_SESSIONS_CHANNEL: &str = "sessiond_ended_sessions";
/// The PostgreSQL NOTIFY channel on which a committed session event is announced (no payload).
pub const EVENTS_CHANNEL: &str = "sessiond_events";
/// The PostgreSQL NOTIFY channel on which a change to the signing keys (a rotation, a
/// revocation) is announced by a trigger (no payload): every instance re-reads its key ring.
pub const SIGNING_KEYS_CHANNEL: &str = "sessiond_signing_keys";

/// One notification heard.
pub struct Announcement {
    pub channel: String,
    pub payload: String,
}

/// A subscription to some channels, on its own connection.
pub struct Announcements {
    listener: PgListener,
}

impl Announcements {
    /// The next notification; `Ok(None)` when the connection was lost (subscribe again).
    pub async fn recv(&mut self) -> StoreResult<Option<Announcement>> {
        let next = self.listener.try_recv().await?;
        Ok(next.map(|n| Announcement {
            channel: n.channel().to_string(),
            payload: n.payload().to_string(),
        }))
    }
}

impl Store {
    /// True where announcements exist (PostgreSQL).
    pub fn announces(&self) -> bool {
        self.backend == Backend::Postgres
    }

    /// Subscribes to `channels` on a new connection (PostgreSQL only; `None` on SQLite).
    pub async fn subscribe(&self, channels: &[&str]) -> StoreResult<Option<Announcements>> {
        let Some(url) = self.listen_url.as_ref().filter(|_| self.announces()) else {
            return Ok(None);
        };
        let mut listener = PgListener::connect(url.expose_secret()).await?;
        listener.listen_all(channels.iter().copied()).await?;
        Ok(Some(Announcements { listener }))
    }

    /// Sends a notification (the session gate's heartbeat to itself).
    pub async fn notify(&self, channel: &str, payload: &str) -> StoreResult<()> {
        sqlx::query("select pg_notify($1, $2)")
            .bind(channel)
            .bind(payload)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}

/// The URL a listener connects with (kept secret: it may hold a password).
pub(super) type ListenUrl = Option<Arc<SecretString>>;
