//! Time as Unix seconds, the unit of every stored time and JWT claim, from an injected
//! [`Clock`]: production reads the system clock; tests move a clock forward instead of
//! sleeping (`Clock::advance`).

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// How far two instances' clocks may disagree, in seconds: the revoking instance's clock stamps
/// a session's end, another instance's clock judges a token's `exp`.
pub const CLOCK_LEEWAY_SECS: i64 = 60;

/// The system clock plus an offset that only tests move. Clones share the offset, so every part
/// of one app sees the same time.
#[derive(Clone, Default)]
pub struct Clock {
    offset_secs: Arc<AtomicI64>,
}

impl Clock {
    /// The system clock.
    pub fn system() -> Clock {
        Clock::default()
    }

    pub fn now(&self) -> i64 {
        system_now() + self.offset_secs.load(Ordering::Relaxed)
    }

    /// Moves this clock (and its clones) forward by `secs`.
    pub fn advance(&self, secs: i64) {
        self.offset_secs.fetch_add(secs, Ordering::SeqCst);
    }
}

impl std::fmt::Debug for Clock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Clock(+{}s)", self.offset_secs.load(Ordering::Relaxed))
    }
}

fn system_now() -> i64 {
    OffsetDateTime::now_utc().unix_timestamp()
}

/// RFC 3339 UTC text for a Unix-seconds time, as the API shows times inside objects.
pub fn rfc3339(unix: i64) -> String {
    OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_rfc3339_utc() {
        assert_eq!(rfc3339(1_790_000_900), "2026-09-21T14:28:20Z");
    }

    #[test]
    fn an_advanced_clock_moves_its_clones_too() {
        let clock = Clock::system();
        let clone = clock.clone();
        let before = clone.now();
        clock.advance(3600);
        assert!(clone.now() >= before + 3600);
    }
}
