//! Readiness from a periodic check, not from the request: every instance checks that its
//! database takes writes four times a second, and `/readyz` answers from the last result. A
//! flood of readiness probes (or an attacker hitting the unauthenticated endpoint) then costs no
//! database work, and an instance cut off from its database turns unready within a second.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How often the database is checked.
pub const CHECK_EVERY: Duration = Duration::from_millis(250);
/// How long one check may take before it counts as failed.
pub const CHECK_TIMEOUT: Duration = Duration::from_millis(750);
/// A success older than this no longer vouches for the database.
const MAX_AGE: Duration = Duration::from_secs(1);

#[derive(Default)]
pub struct Readiness {
    /// When the last check succeeded (a monotonic instant: only its age matters).
    last_ok: Mutex<Option<Instant>>,
}

impl Readiness {
    /// Records the outcome of one check.
    pub fn record(&self, ok: bool) {
        let mut last = self.last_ok.lock().expect("readiness lock");
        if ok {
            *last = Some(Instant::now());
        } else {
            *last = None;
        }
    }

    /// True when a check succeeded within the last second and none has failed since.
    pub fn is_ready(&self) -> bool {
        self.last_ok
            .lock()
            .expect("readiness lock")
            .is_some_and(|at| at.elapsed() <= MAX_AGE)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_only_after_a_success_and_until_a_failure() {
        let readiness = Readiness::default();
        assert!(!readiness.is_ready(), "no check yet");
        readiness.record(true);
        assert!(readiness.is_ready());
        readiness.record(false);
        assert!(!readiness.is_ready(), "a failed check counts at once");
    }
}
