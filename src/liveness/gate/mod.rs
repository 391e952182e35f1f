//! The session gate answers "is this session live right now?" for every bearer-authenticated
//! request and introspection. A JWT's signature only proves the token was issued; logout and
//! revocation end the session before the token expires, and the gate makes that take effect.
//!
//! For a verified access token it answers from the set of recently ended sessions
//! (`recently_ended`): no database read and no per-session memory, at any number of live
//! sessions. Where that set cannot vouch (not current), and where a caller needs the session
//! itself (`GET /v1/me`, ticket redemption, the upgrade), it reads the session:
//!
//! A snapshot of each session (and its user) is cached per instance, and dropped when the
//! session ends —
//! - on this instance, at once (`ended`);
//! - on other instances through PostgreSQL `LISTEN/NOTIFY` (the announcement bus,
//!   `crate::liveness::bus`), within milliseconds. While the listener is down, the cache is emptied and snapshots live only
//!   `UNSURE_TTL`, so revocations are still seen within a second;
//! - on SQLite, a single instance owns the file, but the CLI may write to it from another
//!   process, so snapshots live `UNSURE_TTL` there too.
//!
//! Revocation is final and an absolute expiry never moves, so a cached "ended" is trusted; a
//! cached "idle too long" is re-read, because a refresh elsewhere may have moved `last_seen_at`.
//! A load that raced with an invalidation is not cached (the `generation` check), so a stale
//! "live" can never outlast the event that ended it.

mod recently_ended;

pub use recently_ended::{Knowledge, RecentlyEnded};

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use quick_cache::sync::Cache;
use tokio::sync::Notify;

use crate::domain::SessionStatus;
use crate::domain::{Session, User};
use crate::error::Error;
use crate::store::{Store, StoreError, StoreResult};

/// How long a snapshot is trusted while instances are told of every revocation.
const LISTENING_TTL: Duration = Duration::from_secs(10);
/// How long a snapshot is trusted when another writer might not tell us (listener down, SQLite
/// shared with the CLI): short enough that a revocation is seen within a second.
const UNSURE_TTL: Duration = Duration::from_millis(500);

pub struct Snapshot {
    pub session: Session,
    pub user: User,
    loaded: Instant,
}

pub struct SessionGate {
    store: Store,
    idle_timeout_secs: i64,
    read_timeout: Duration,
    /// Woken when the announcement listener hears that a session event was committed.
    events_committed: Arc<Notify>,
    cache: Cache<String, Arc<Snapshot>>,
    /// Sessions ended within the last access-token lifetime, kept current by the event feed.
    recently_ended: Arc<RecentlyEnded>,
    /// Bumped by every invalidation; a load that saw it change is not cached.
    generation: AtomicU64,
    /// True while this instance is subscribed to ended-session announcements.
    listening: AtomicBool,
    /// Sessions read from the database (a metric: zero per validation in the steady state).
    reads: AtomicU64,
}

impl SessionGate {
    pub fn new(
        store: Store,
        idle_timeout_secs: i64,
        read_timeout: Duration,
        capacity: usize,
        recently_ended: Arc<RecentlyEnded>,
        events_committed: Arc<Notify>,
    ) -> SessionGate {
        SessionGate {
            store,
            idle_timeout_secs,
            read_timeout,
            events_committed,
            cache: Cache::new(capacity.max(16)),
            recently_ended,
            generation: AtomicU64::new(0),
            listening: AtomicBool::new(false),
            reads: AtomicU64::new(0),
        }
    }

    /// For an access token whose signature and expiry were checked: `Ok` if its session `sid`
    /// (of user `sub`) has not ended, `invalid_token` if it has. Answered from the set of
    /// recently ended sessions while it is current: the token's `exp` never passes its
    /// session's expiry, so only a revocation can have ended the session. From the database
    /// otherwise (503 when it cannot answer).
    pub async fn token_session_live(&self, sid: &str, sub: &str, now: i64) -> Result<(), Error> {
        match self.recently_ended.knows(sid) {
            Knowledge::Ended => Err(Error::InvalidToken("the session has ended")),
            Knowledge::NotEnded => Ok(()),
            Knowledge::Unsure => self.live(sid, sub, now).await.map(|_| ()),
        }
    }

    /// The set of recently ended sessions (its size and misses are metrics).
    pub fn recently_ended(&self) -> &Arc<RecentlyEnded> {
        &self.recently_ended
    }

    /// The live session `sid` of user `sub`, or `invalid_token`.
    pub async fn live(&self, sid: &str, sub: &str, now: i64) -> Result<Arc<Snapshot>, Error> {
        match self.snapshot(sid, now).await? {
            Some(snapshot) if snapshot.session.user_id == sub => Ok(snapshot),
            _ => Err(Error::InvalidToken("the session has ended")),
        }
    }

    /// Session `sid` with its user if it is live right now, `None` if it ended or never was.
    pub async fn snapshot(&self, sid: &str, now: i64) -> StoreResult<Option<Arc<Snapshot>>> {
        if let Some(snapshot) = self.cache.get(sid)
            && snapshot.loaded.elapsed() < self.ttl()
        {
            match snapshot.session.status(now, self.idle_timeout_secs) {
                SessionStatus::Live => return Ok(Some(snapshot)),
                SessionStatus::Revoked | SessionStatus::Expired => return Ok(None),
                SessionStatus::Idle => {} // a refresh elsewhere may have moved last_seen_at
            }
        }
        let loaded = self.load(sid).await?;
        Ok(loaded.filter(|snapshot| {
            snapshot.session.status(now, self.idle_timeout_secs) == SessionStatus::Live
        }))
    }

    /// Sessions that ended through this instance: forget them here at once. Other instances
    /// hear of it from the database itself: on PostgreSQL a trigger announces every ended or
    /// reshaped session in the transaction that changes it (`migrations/postgres/0004_…`).
    pub fn ended(&self, session_ids: &[String]) {
        if session_ids.is_empty() {
            return;
        }
        for id in session_ids {
            self.recently_ended.record_now(id);
        }
        self.forget(session_ids.iter().map(String::as_str));
        // Their session.ended events are committed: the feed need not wait for its next poll.
        self.events_committed.notify_one();
    }

    /// True while this instance hears its own heartbeats through the announcement bus, i.e.
    /// trusts that it is told of every ended session.
    pub fn is_listening(&self) -> bool {
        self.listening.load(Ordering::SeqCst)
    }

    /// The announcement bus ([`crate::liveness::bus`]) started or stopped hearing its own heartbeats.
    /// Either way, anything cached before may have missed an announcement.
    pub fn set_listening(&self, listening: bool) {
        self.forget_all();
        self.listening.store(listening, Ordering::SeqCst);
    }

    /// Sessions another instance announced as ended or changed: re-read them on next use.
    pub fn announced(&self, session_ids: &str) {
        self.forget(session_ids.split(','));
    }

    /// A session changed (refreshed, or upgraded from a guest): re-read it on next use here.
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

    /// How many sessions this gate has read from the database.
    pub fn session_reads(&self) -> u64 {
        self.reads.load(Ordering::Relaxed)
    }

    async fn load(&self, sid: &str) -> StoreResult<Option<Arc<Snapshot>>> {
        self.reads.fetch_add(1, Ordering::Relaxed);
        let generation = self.generation.load(Ordering::SeqCst);
        // A connection that has gone silent would hang this read for minutes: past the read
        // timeout the database counts as unavailable (503), never as "live".
        let read = tokio::time::timeout(self.read_timeout, self.store.session_with_user(sid));
        let loaded = read.await.map_err(|_| StoreError::timed_out())?;
        let Some((session, user)) = loaded? else {
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
}
