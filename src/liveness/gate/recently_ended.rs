//! The sessions that ended recently: what lets an instance validate an access token without a
//! database read, at any number of live sessions.
//!
//! An access token is valid while its signature holds, it has not expired, and its session has
//! not ended. Its `exp` never passes its session's absolute or idle expiry (capped when it is
//! issued), so of the three ways a session ends, only revocation can end one before its tokens
//! expire. A session revoked more than one token lifetime ago has no unexpired token left. So
//! what an instance must hold is the set of sessions ended within the last token lifetime (plus
//! leeway for clocks): bounded by the revocation rate, not by the number of live sessions.
//!
//! The set is filled from the session event log (`session.ended` is written by a trigger in the
//! transaction that ends a session, whoever ends it): loaded at start, then fed by the event
//! feed's tail, which every instance runs and which PostgreSQL wakes within milliseconds of a
//! commit; this instance's own ends are added at once. The set is only as good as that tail:
//! it counts as current while the tail has read to the end of the log within `CURRENT_FOR`.
//! When it is not (the database is unreachable, the tail is stuck), callers must ask the
//! database instead, which answers 503 when it cannot: never "live" on stale knowledge.

use std::collections::HashMap;
use std::sync::RwLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::clock::{CLOCK_LEEWAY_SECS, Clock};

/// How long a complete read of the event log vouches for the set. The tail reads every
/// `events.poll_interval_ms` (100 ms by default) and at once on PostgreSQL's announcement, so
/// only a tail that cannot reach the database falls this far behind.
pub const CURRENT_FOR: Duration = Duration::from_secs(1);

/// What the set knows about one session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Knowledge {
    /// It ended (its tokens are invalid, whatever their `exp`).
    Ended,
    /// It has not ended as of a read of the log less than `CURRENT_FOR` ago.
    NotEnded,
    /// The set is not current: ask the database.
    Unsure,
}

pub struct RecentlyEnded {
    clock: Clock,
    /// How long an ended session is remembered: the token lifetime plus leeway.
    horizon_secs: i64,
    /// Session id -> until when it is remembered (Unix seconds).
    ended: RwLock<HashMap<Box<str>, i64>>,
    /// When the set was last known complete: the start of the last read that reached the end of
    /// the log, in milliseconds after `epoch`; 0 before the first.
    current_at_ms: AtomicU64,
    epoch: Instant,
    /// Validations that found the set not current and went to the database.
    unsure_answers: AtomicU64,
}

impl RecentlyEnded {
    pub fn new(clock: Clock, access_ttl_secs: i64) -> RecentlyEnded {
        RecentlyEnded {
            clock,
            horizon_secs: access_ttl_secs + CLOCK_LEEWAY_SECS,
            ended: RwLock::new(HashMap::new()),
            current_at_ms: AtomicU64::new(0),
            epoch: Instant::now(),
            unsure_answers: AtomicU64::new(0),
        }
    }

    /// How far back the log must be read at start (Unix seconds at `now`).
    pub fn horizon_start(&self, now: i64) -> i64 {
        now - self.horizon_secs
    }

    /// Whether session `id` has ended, as far as the set can tell.
    pub fn knows(&self, id: &str) -> Knowledge {
        self.knows_at(id, Instant::now())
    }

    fn knows_at(&self, id: &str, now: Instant) -> Knowledge {
        if self.read().contains_key(id) {
            return Knowledge::Ended;
        }
        if self.is_current_at(now) {
            Knowledge::NotEnded
        } else {
            self.unsure_answers.fetch_add(1, Ordering::Relaxed);
            Knowledge::Unsure
        }
    }

    /// True while a read of the whole log began less than `CURRENT_FOR` ago.
    pub fn is_current(&self) -> bool {
        self.is_current_at(Instant::now())
    }

    fn is_current_at(&self, now: Instant) -> bool {
        let at = self.current_at_ms.load(Ordering::Acquire);
        at != 0 && self.millis_at(now).saturating_sub(at) < CURRENT_FOR.as_millis() as u64
    }

    /// Session `id` ended at `at` (Unix seconds, the clock of whoever ended it). Remembered for
    /// a token lifetime after the later of `at` and now, so a skewed stamp never shortens it.
    pub fn record(&self, id: &str, at: i64) {
        let until = at.max(self.clock.now()) + self.horizon_secs;
        let mut ended = self.write();
        let entry = ended.entry(id.into()).or_insert(until);
        *entry = (*entry).max(until);
    }

    /// Session `id` ended just now, through this instance.
    pub fn record_now(&self, id: &str) {
        self.record(id, self.clock.now());
    }

    /// Every event up to the end of the log has been recorded, by a read that began at
    /// `read_began` (taken before the read, so the set vouches for no later than it knows).
    pub fn caught_up(&self, read_began: Instant) {
        let at = self.millis_at(read_began).max(1);
        self.current_at_ms.fetch_max(at, Ordering::AcqRel);
    }

    /// Forgets sessions whose tokens have all expired.
    pub fn prune(&self) {
        let now = self.clock.now();
        self.write().retain(|_, until| *until >= now);
    }

    /// Sessions remembered right now (a metric).
    pub fn len(&self) -> usize {
        self.read().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Validations answered by the database because the set was not current (a metric).
    pub fn unsure_answers(&self) -> u64 {
        self.unsure_answers.load(Ordering::Relaxed)
    }

    fn millis_at(&self, at: Instant) -> u64 {
        at.saturating_duration_since(self.epoch).as_millis() as u64
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, HashMap<Box<str>, i64>> {
        // A panic while holding the lock cannot leave the map half-written in a way that
        // matters (inserts and retains are whole operations): keep serving.
        self.ended
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<Box<str>, i64>> {
        self.ended
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set() -> (RecentlyEnded, Clock) {
        let clock = Clock::system();
        (RecentlyEnded::new(clock.clone(), 900), clock)
    }

    #[test]
    fn before_the_first_complete_read_nothing_is_vouched_for() {
        let (ended, _) = set();
        assert_eq!(ended.knows("s1"), Knowledge::Unsure);
        assert_eq!(ended.unsure_answers(), 1);
        ended.caught_up(Instant::now());
        assert_eq!(ended.knows("s1"), Knowledge::NotEnded);
    }

    #[test]
    fn an_ended_session_is_known_ended_even_when_the_set_is_not_current() {
        let (ended, clock) = set();
        ended.record("s1", clock.now());
        assert_eq!(ended.knows("s1"), Knowledge::Ended);
        ended.caught_up(Instant::now());
        assert_eq!(ended.knows("s1"), Knowledge::Ended);
        assert_eq!(ended.knows("s2"), Knowledge::NotEnded);
    }

    #[test]
    fn a_read_that_began_a_second_ago_no_longer_vouches() {
        let (ended, _) = set();
        let read_began = Instant::now();
        ended.caught_up(read_began);
        let later = read_began + CURRENT_FOR - Duration::from_millis(10);
        assert_eq!(ended.knows_at("s1", later), Knowledge::NotEnded);
        let too_late = read_began + CURRENT_FOR + Duration::from_millis(10);
        assert_eq!(ended.knows_at("s1", too_late), Knowledge::Unsure);
        ended.caught_up(too_late);
        assert_eq!(ended.knows_at("s1", too_late), Knowledge::NotEnded);
    }

    #[test]
    fn an_ended_session_is_forgotten_once_its_tokens_have_expired() {
        let (ended, clock) = set();
        ended.record("s1", clock.now());
        ended.prune();
        assert_eq!(ended.len(), 1, "remembered while a token may be unexpired");
        clock.advance(900 + CLOCK_LEEWAY_SECS + 1);
        ended.prune();
        assert!(ended.is_empty());
    }

    #[test]
    fn a_stamp_from_a_slow_clock_never_shortens_the_memory() {
        let (ended, clock) = set();
        ended.record("s1", clock.now() - 10_000);
        clock.advance(900);
        ended.prune();
        assert_eq!(
            ended.len(),
            1,
            "remembered a token lifetime after it was heard of"
        );
    }
}
