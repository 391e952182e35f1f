//! The session event feed, per instance: one task tails `session_events` and fans each new
//! event out to every connected consumer (`GET /v1/events`).
//!
//! The database is the only source of truth: events are written by triggers in the
//! transaction of the change, ids become visible in order (see the migration), and every
//! instance tails the same table, so every instance serves the same stream. The tail is woken
//! by the `sessiond_events` announcement on PostgreSQL (milliseconds after a commit on any
//! instance), by this instance's own commits that open or end sessions, and polls every
//! `poll_interval` regardless, which catches writes by other processes (the CLI on SQLite) and
//! bounds the delay while the PostgreSQL listener is down.
//!
//! The tail also keeps this instance's set of recently ended sessions current (see
//! `gate::RecentlyEnded`): it records every `session.ended` it reads, and each read that reaches
//! the end of the log vouches for the set for a second.
//!
//! Consumers share one bounded ring (`broadcast`). A consumer that falls behind by more than
//! the ring holds is dropped and resumes with `Last-Event-ID`; it never holds up the tail,
//! revocation or other consumers.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::{Notify, broadcast};

use crate::clock::Clock;
use crate::domain::{SessionEvent, SessionEventKind};
use crate::error::Error;
use crate::liveness::gate::RecentlyEnded;
use crate::store::{Store, StoreResult};

/// The event type that ends a session (written by the triggers).
/// How often the set of recently ended sessions drops what has expired.
const PRUNE_EVERY: Duration = Duration::from_secs(5);

/// Events read from the database per query.
pub const PAGE: i64 = 500;

/// An event as fanned out to every consumer, with its wire form rendered once for all of them.
pub struct PublishedEvent {
    pub row: SessionEvent,
    rendered: OnceLock<Bytes>,
}

impl PublishedEvent {
    /// The event's wire form: rendered by the first consumer that needs it, shared by the rest.
    pub fn rendered(&self, render: impl FnOnce(&SessionEvent) -> Bytes) -> Bytes {
        self.rendered.get_or_init(|| render(&self.row)).clone()
    }
}

pub struct EventFeed {
    store: Store,
    clock: Clock,
    recently_ended: Arc<RecentlyEnded>,
    sender: broadcast::Sender<Arc<PublishedEvent>>,
    /// The id of the newest event fanned out so far.
    head: AtomicI64,
    wake: Arc<Notify>,
    poll_interval: Duration,
    /// Set at shutdown: every stream ends, and its consumer resumes elsewhere with
    /// `Last-Event-ID`.
    closing: tokio::sync::watch::Sender<bool>,
    /// Streams open on this instance, per service key name.
    streams: Arc<Mutex<HashMap<Arc<str>, usize>>>,
}

/// One open stream of a service key; dropping it frees its place.
pub struct StreamLease {
    holder: Arc<str>,
    streams: Arc<Mutex<HashMap<Arc<str>, usize>>>,
}

impl Drop for StreamLease {
    fn drop(&mut self) {
        let mut streams = self.streams.lock().expect("stream lease lock");
        if let Some(open) = streams.get_mut(&self.holder) {
            *open -= 1;
            if *open == 0 {
                streams.remove(&self.holder);
            }
        }
    }
}

impl EventFeed {
    pub fn new(
        store: Store,
        clock: Clock,
        recently_ended: Arc<RecentlyEnded>,
        ring: usize,
        poll_interval: Duration,
    ) -> EventFeed {
        let (sender, _) = broadcast::channel(ring.max(16));
        EventFeed {
            store,
            clock,
            recently_ended,
            sender,
            head: AtomicI64::new(0),
            wake: Arc::new(Notify::new()),
            poll_interval,
            closing: tokio::sync::watch::Sender::new(false),
            streams: Arc::default(),
        }
    }

    /// A place for one more stream of `holder` (a service key's name), unless it already holds
    /// `cap` on this instance. Streams are held by the instance that serves them, so the cap
    /// bounds what one key can pin on each instance; a leaked key cannot exhaust a server.
    pub fn lease_stream(&self, holder: &Arc<str>, cap: usize) -> Option<StreamLease> {
        let mut streams = self.streams.lock().expect("stream lease lock");
        let open = streams.entry(holder.clone()).or_insert(0);
        if *open >= cap {
            return None;
        }
        *open += 1;
        Some(StreamLease {
            holder: holder.clone(),
            streams: self.streams.clone(),
        })
    }

    /// Ends every stream (at shutdown), now and for streams that open later.
    pub fn close(&self) {
        self.closing.send_replace(true);
    }

    /// Resolves once the feed is closed.
    pub async fn closed(&self) {
        let mut closing = self.closing.subscribe();
        // Only fails if the sender is gone, i.e. the feed itself: over either way.
        let _ = closing.wait_for(|closed| *closed).await;
    }

    /// Notified when an event may have been committed (on PostgreSQL, by the listener).
    pub fn waker(&self) -> Arc<Notify> {
        self.wake.clone()
    }

    /// Every event fanned out from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<PublishedEvent>> {
        self.sender.subscribe()
    }

    /// The id of the newest event fanned out so far: a consumer without `Last-Event-ID`
    /// starts after it.
    pub fn head(&self) -> i64 {
        self.head.load(Ordering::SeqCst)
    }

    /// Up to `limit` committed events after id `after`, oldest first.
    pub async fn events_after(&self, after: i64, limit: i64) -> Result<Vec<SessionEvent>, Error> {
        Ok(self.store.events_after(after, limit).await?)
    }

    /// The newest committed event id (0 when there is none).
    pub async fn last_event_id(&self) -> Result<i64, Error> {
        Ok(self.store.last_event_id().await?)
    }

    /// Where a consumer resuming after `after` starts: `Ok(after)`, or `Err(newest)` when the
    /// events after it are no longer retained (or it names an event that never was), so it
    /// starts over from the newest event.
    pub async fn resume_point(&self, after: i64) -> Result<Result<i64, i64>, Error> {
        let (purged, last) = self.store.event_bounds().await?;
        Ok(if after < purged || after > last {
            Err(last)
        } else {
            Ok(after)
        })
    }

    /// Starts after the newest event in the database, with every session ended within the
    /// last access-token lifetime recorded; fails if the database does not answer.
    pub async fn start(&self) -> StoreResult<()> {
        let read_began = Instant::now();
        let last = self.store.last_event_id().await?;
        let since = self.recently_ended.horizon_start(self.clock.now());
        for (session_id, at) in self.store.sessions_ended_since(since, last).await? {
            self.recently_ended.record(&session_id, at);
        }
        self.head.store(last, Ordering::SeqCst);
        self.recently_ended.caught_up(read_began);
        Ok(())
    }

    /// Tails the table for as long as the process runs.
    pub async fn run(self: Arc<Self>) {
        let mut pruned = Instant::now();
        loop {
            tokio::select! {
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(self.poll_interval) => {}
            }
            if let Err(error) = self.fan_out_new_events().await {
                tracing::warn!(error = ?error, "could not read session events");
            }
            if pruned.elapsed() >= PRUNE_EVERY {
                self.recently_ended.prune();
                pruned = Instant::now();
            }
        }
    }

    async fn fan_out_new_events(&self) -> StoreResult<()> {
        let read_began = Instant::now();
        loop {
            let after = self.head();
            let events = self.store.events_after(after, PAGE).await?;
            let complete = (events.len() as i64) < PAGE;
            for row in events {
                let id = row.id;
                if row.kind == SessionEventKind::SessionEnded
                    && let Some(session_id) = &row.session_id
                {
                    self.recently_ended.record(session_id.as_str(), row.at);
                }
                let event = PublishedEvent {
                    row,
                    rendered: OnceLock::new(),
                };
                // No receivers is fine: nobody is following right now.
                let _ = self.sender.send(Arc::new(event));
                self.head.store(id, Ordering::SeqCst);
            }
            if complete {
                self.recently_ended.caught_up(read_began);
                return Ok(());
            }
        }
    }
}
