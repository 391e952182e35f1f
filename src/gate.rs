//! The session gate answers "is this session live right now?" for every bearer-authenticated
//! request and introspection. A JWT's signature only proves the token was issued; logout and
//! revocation end the session before the token expires, and the gate makes that take effect.
//!
//! In the steady state it answers from memory: a snapshot of each session (and its user) is
//! cached per instance, and dropped when the session ends —
//! - on this instance, at once (`ended`);
//! - on other instances through PostgreSQL `LISTEN/NOTIFY` (`ENDED_SESSIONS_CHANNEL`), within
//!   milliseconds. While the listener is down, the cache is emptied and snapshots live only
//!   `UNSURE_TTL`, so revocations are still seen within a second;
//! - on SQLite, a single instance owns the file, but the CLI may write to it from another
//!   process, so snapshots live `UNSURE_TTL` there too.
//!
//! Revocation is final and an absolute expiry never moves, so a cached "ended" is trusted; a
//! cached "idle too long" is re-read, because a refresh elsewhere may have moved `last_seen_at`.
//! A load that raced with an invalidation is not cached (the `generation` check), so a stale
//! "live" can never outlast the event that ended it.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use quick_cache::sync::Cache;

use crate::error::ApiError;
use crate::store::{Backend, SessionRow, Store, StoreResult, UserRow};

/// How long a snapshot is trusted while instances are told of every revocation.
const LISTENING_TTL: Duration = Duration::from_secs(10);
/// How long a snapshot is trusted when another writer might not tell us (listener down, SQLite
/// shared with the CLI): short enough that a revocation is seen within a second.
const UNSURE_TTL: Duration = Duration::from_millis(500);

pub struct Snapshot {
    pub session: SessionRow,
    pub user: UserRow,
    loaded: Instant,
}

pub struct SessionGate {
    store: Store,
    idle_timeout_secs: i64,
    cache: Cache<String, Arc<Snapshot>>,
    /// Bumped by every invalidation; a load that saw it change is not cached.
    generation: AtomicU64,
    /// True while this instance is subscribed to ended-session announcements.
    listening: AtomicBool,
}

impl SessionGate {
    pub fn new(store: Store, idle_timeout_secs: i64, capacity: usize) -> SessionGate {
        SessionGate {
            store,
            idle_timeout_secs,
            cache: Cache::new(capacity.max(16)),
            generation: AtomicU64::new(0),
            listening: AtomicBool::new(false),
        }
    }

    /// The live session `sid` of user `sub`, or `invalid_token`.
    pub async fn live(&self, sid: &str, sub: &str, now: i64) -> Result<Arc<Snapshot>, ApiError> {
        match self.snapshot(sid, now).await? {
            Some(snapshot) if snapshot.session.user_id == sub => Ok(snapshot),
            _ => Err(ApiError::InvalidToken("the session has ended")),
        }
    }

    /// Session `sid` with its user if it is live right now, `None` if it ended or never was.
    pub async fn snapshot(&self, sid: &str, now: i64) -> StoreResult<Option<Arc<Snapshot>>> {
        if let Some(snapshot) = self.cache.get(sid)
            && snapshot.loaded.elapsed() < self.ttl()
        {
            if snapshot.session.revoked_at.is_some() || snapshot.session.expires_at <= now {
                return Ok(None);
            }
            if self.is_live(&snapshot.session, now) {
                return Ok(Some(snapshot));
            }
        }
        let loaded = self.load(sid).await?;
        Ok(loaded.filter(|snapshot| self.is_live(&snapshot.session, now)))
    }

    pub fn is_live(&self, session: &SessionRow, now: i64) -> bool {
        session.revoked_at.is_none()
            && session.expires_at > now
            && session.last_seen_at + self.idle_timeout_secs > now
    }

    /// Sessions that ended through this instance: forget them here and tell the others.
    pub async fn ended(&self, session_ids: &[String]) -> StoreResult<()> {
        self.forget(session_ids.iter().map(String::as_str));
        self.store.announce_ended(session_ids).await
    }

    /// A session or its user changed in a way every instance must see (a guest upgraded):
    /// forget it here and tell the others, as for an ended session.
    pub async fn changed_everywhere(&self, session_id: &str) -> StoreResult<()> {
        self.ended(&[session_id.to_string()]).await
    }

    /// A session changed (refreshed) but did not end: re-read it on next use here.
    pub fn changed(&self, session_id: &str) {
        self.forget(std::iter::once(session_id));
    }

    fn forget<'a>(&self, session_ids: impl Iterator<Item = &'a str>) {
        self.generation.fetch_add(1, Ordering::SeqCst);
        for id in session_ids {
            self.cache.remove(id);
        }
    }

    fn forget_all(&self) {
        self.generation.fetch_add(1, Ordering::SeqCst);
        self.cache.clear();
    }

    fn ttl(&self) -> Duration {
        if self.listening.load(Ordering::Relaxed) {
            LISTENING_TTL
        } else {
            UNSURE_TTL
        }
    }

    async fn load(&self, sid: &str) -> StoreResult<Option<Arc<Snapshot>>> {
        let generation = self.generation.load(Ordering::SeqCst);
        let Some((session, user)) = self.store.session_with_user(sid).await? else {
            return Ok(None);
        };
        let snapshot = Arc::new(Snapshot {
            session,
            user,
            loaded: Instant::now(),
        });
        if self.generation.load(Ordering::SeqCst) == generation {
            self.cache.insert(sid.to_string(), snapshot.clone());
        }
        Ok(Some(snapshot))
    }

    /// Follows other instances' announcements for as long as the process runs (PostgreSQL
    /// only). Reconnects by itself; empties the cache whenever it may have missed something.
    pub async fn follow_announcements(self: Arc<Self>, database_url: String) {
        if self.store.backend() != Backend::Postgres {
            return;
        }
        loop {
            match self.listen_until_lost(&database_url).await {
                Ok(()) => tracing::warn!("lost the session announcement listener; reconnecting"),
                Err(error) => {
                    tracing::warn!(error = %error, "session announcement listener failed")
                }
            }
            self.listening.store(false, Ordering::SeqCst);
            self.forget_all();
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }

    async fn listen_until_lost(&self, database_url: &str) -> Result<(), sqlx::Error> {
        let mut listener = sqlx::postgres::PgListener::connect(database_url).await?;
        listener
            .listen(crate::store::ENDED_SESSIONS_CHANNEL)
            .await?;
        // Anything cached before we were subscribed may have missed an announcement.
        self.forget_all();
        self.listening.store(true, Ordering::SeqCst);
        tracing::info!("following ended-session announcements");
        while let Some(notification) = listener.try_recv().await? {
            self.forget(notification.payload().split(','));
        }
        Ok(())
    }
}
