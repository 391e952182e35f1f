//! What a spent refresh token presented again means. Rotation spends a token and hands out its
//! successor; a client that lost the answer (a dropped connection, two tabs racing) presents the
//! spent token again. Within the grace window, and while the successor is unused, that is a
//! retry, not theft: the client gets the same successor again (when it is kept, sealed) or is
//! told another request won. Anything else is reuse, and ends the session.

/// How a spent refresh token presented again is answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpentTokenVerdict {
    /// A retry within the grace window: answer with the same successor again.
    Replayed,
    /// A retry within the grace window whose successor is not kept: another request won.
    Superseded,
    /// Presented after the grace window, or after its successor was used: the session ends.
    Reused,
}

/// What the store knows about the spent token when it is presented again.
#[derive(Debug, Clone, Copy)]
pub struct SpentToken {
    /// When it was rotated (Unix seconds); `None` when it was never rotated (revoked instead).
    pub rotated_at: Option<i64>,
    /// Whether its successor was rotated in turn (the client moved on).
    pub successor_used: bool,
    /// Whether its successor is kept (sealed) so that it can be handed out again.
    pub successor_kept: bool,
}

impl SpentToken {
    /// The verdict at `now` with a grace window of `grace_secs`.
    pub fn verdict(&self, now: i64, grace_secs: i64) -> SpentTokenVerdict {
        // A clock that stepped back counts as no time passed.
        let in_grace = self
            .rotated_at
            .is_some_and(|at| now.saturating_sub(at).max(0) <= grace_secs);
        match (in_grace && !self.successor_used, self.successor_kept) {
            (true, true) => SpentTokenVerdict::Replayed,
            (true, false) => SpentTokenVerdict::Superseded,
            (false, _) => SpentTokenVerdict::Reused,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::SpentTokenVerdict::*;
    use super::*;

    const GRACE: i64 = 10;

    fn spent(rotated_at: Option<i64>, successor_used: bool, successor_kept: bool) -> SpentToken {
        SpentToken {
            rotated_at,
            successor_used,
            successor_kept,
        }
    }

    #[test]
    fn a_retry_within_the_window_gets_the_kept_successor_again() {
        assert_eq!(spent(Some(100), false, true).verdict(105, GRACE), Replayed);
        assert_eq!(spent(Some(100), false, true).verdict(110, GRACE), Replayed);
    }

    #[test]
    fn a_retry_within_the_window_without_a_kept_successor_is_superseded() {
        assert_eq!(
            spent(Some(100), false, false).verdict(101, GRACE),
            Superseded
        );
    }

    #[test]
    fn after_the_window_it_is_reuse() {
        assert_eq!(spent(Some(100), false, true).verdict(111, GRACE), Reused);
        assert_eq!(spent(Some(100), false, false).verdict(111, GRACE), Reused);
    }

    #[test]
    fn once_the_successor_was_used_it_is_reuse_even_within_the_window() {
        assert_eq!(spent(Some(100), true, true).verdict(101, GRACE), Reused);
        assert_eq!(spent(Some(100), true, false).verdict(101, GRACE), Reused);
    }

    #[test]
    fn a_token_never_rotated_is_reuse() {
        assert_eq!(spent(None, false, true).verdict(100, GRACE), Reused);
    }

    #[test]
    fn a_clock_that_stepped_back_counts_as_no_time() {
        assert_eq!(spent(Some(100), false, true).verdict(90, GRACE), Replayed);
    }

    #[test]
    fn a_zero_window_allows_only_the_same_second() {
        assert_eq!(spent(Some(100), false, true).verdict(100, 0), Replayed);
        assert_eq!(spent(Some(100), false, true).verdict(101, 0), Reused);
    }
}
