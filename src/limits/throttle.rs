//! Login throttling per account, stored in the database so that every instance enforces one
//! budget (the per-IP token bucket in `rate_limit` is per instance and only a first brake).
//!
//! Two counters, in the spirit of Keycloak's and Authelia's brute-force protection:
//! - per (account, client address): after `client_failures` failures within `window_secs` the
//!   pair is blocked for `base_delay_secs`, doubling with each further failure up to
//!   `max_delay_secs`; a successful login clears the pair;
//! - per account from every address: past `account_failures` failures in the window, the
//!   account is under attack: addresses that have failed for it are refused until the attack
//!   stops, and every other attempt waits `account_delay_ms` before it is checked.
//!
//! Every attempt is counted before its check runs, atomically with the block it may cause
//! (`Store::reserve_login_attempt`), and a passing check clears its count: twenty guesses sent
//! at once get five checks, not twenty. Every credential check goes through here — a login's
//! password, the current password of a password change, and later re-authentication and
//! second factors — under one budget per account.
//!
//! So a guesser is slowed to a crawl, while the owner, from an address that has not failed,
//! can still sign in: nobody can lock a victim out by guessing. The account key is the email
//! as typed (normalized), whether or not an account has it, so a throttled answer (`429` with
//! `Retry-After`) says nothing about which emails exist. While blocked, the password is not
//! even checked: a block is not an oracle for guesses made during it.

use std::time::Duration;

use crate::config::ThrottleSettings;
use crate::store::{EVERY_CLIENT, Reservation, Store, StoreResult};

/// What to do with a credential attempt before checking it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Open(Admitted),
    /// The account is under attack but this address has not failed: check, after a pause.
    Slowed(Duration, Admitted),
    /// Refused for this many seconds.
    Blocked(i64),
}

/// An attempt the throttle let through (already counted as a failure until it passes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Admitted {
    /// Failing this check blocks the account from this address (the block is already set).
    blocks: bool,
}

/// What a failure changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Failure {
    /// This failure started (or lengthened) a block of the account from this address.
    pub blocked_client: bool,
    /// This failure took the account past its ceiling.
    pub blocked_account: bool,
}

pub struct LoginThrottle {
    store: Store,
    settings: ThrottleSettings,
}

impl LoginThrottle {
    pub fn new(store: Store, settings: ThrottleSettings) -> LoginThrottle {
        LoginThrottle { store, settings }
    }

    fn enabled(&self) -> bool {
        self.settings.client_failures > 0
    }

    /// Decides whether an attempt may be checked, and if so counts it in advance.
    pub async fn admit(&self, account: &str, client: &str, now: i64) -> StoreResult<Verdict> {
        if !self.enabled() {
            return Ok(Verdict::Open(Admitted::default()));
        }
        let s = &self.settings;
        let window_start = now - s.window_secs;
        let state = self
            .store
            .login_throttle(account, client, window_start)
            .await?;
        let under_attack = state.account_blocked_until > now;
        if under_attack && state.client_failures > 0 {
            return Ok(Verdict::Blocked(state.account_blocked_until - now));
        }
        let reservation = self
            .store
            .reserve_login_attempt(account, client, now, window_start, |failures| {
                client_delay(s, failures)
            })
            .await?;
        let admitted = match reservation {
            Reservation::Blocked { until } => return Ok(Verdict::Blocked(until - now)),
            Reservation::Reserved { blocks } => Admitted { blocks },
        };
        Ok(if under_attack {
            Verdict::Slowed(Duration::from_millis(s.account_delay_ms), admitted)
        } else {
            Verdict::Open(admitted)
        })
    }

    /// Records that an admitted attempt failed: it was counted for its address already; here
    /// it counts against the account from every address.
    pub async fn failed(
        &self,
        account: &str,
        admitted: Admitted,
        now: i64,
    ) -> StoreResult<Failure> {
        if !self.enabled() {
            return Ok(Failure::default());
        }
        let s = &self.settings;
        let window_start = now - s.window_secs;
        let store = &self.store;
        let mut failure = Failure {
            blocked_client: admitted.blocks,
            blocked_account: false,
        };
        let everywhere = store
            .count_login_failure(account, EVERY_CLIENT, now, window_start)
            .await?;
        if everywhere >= s.account_failures {
            let until = now + s.account_block_secs;
            store.block_login(account, EVERY_CLIENT, until).await?;
            failure.blocked_account = everywhere == s.account_failures;
        }
        Ok(failure)
    }

    pub async fn succeeded(&self, account: &str, client: &str) -> StoreResult<()> {
        if self.enabled() {
            self.store
                .clear_login_failures(account, Some(client))
                .await?;
        }
        Ok(())
    }

    /// Clears every counter of an account (admin API, CLI).
    pub async fn clear(&self, account: &str) -> StoreResult<u64> {
        self.store.clear_login_failures(account, None).await
    }
}

/// The block after the `failures`-th failure in the window from one address, if any:
/// `base_delay_secs` at the threshold, doubling with each failure, capped at `max_delay_secs`.
fn client_delay(s: &ThrottleSettings, failures: i64) -> Option<i64> {
    let over = failures - s.client_failures;
    if over < 0 {
        return None;
    }
    let doubled = s.base_delay_secs.saturating_mul(1i64 << over.min(30));
    Some(doubled.min(s.max_delay_secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn defaults() -> ThrottleSettings {
        ThrottleSettings {
            client_failures: 5,
            window_secs: 900,
            base_delay_secs: 30,
            max_delay_secs: 900,
            account_failures: 100,
            account_block_secs: 60,
            account_delay_ms: 1000,
        }
    }

    #[test]
    fn the_delay_starts_at_the_threshold_and_doubles_up_to_the_cap() {
        let s = defaults();
        let delays: Vec<Option<i64>> = (1..=12).map(|n| client_delay(&s, n)).collect();
        assert_eq!(
            delays,
            [
                None,
                None,
                None,
                None,
                Some(30),
                Some(60),
                Some(120),
                Some(240),
                Some(480),
                Some(900),
                Some(900),
                Some(900)
            ]
        );
        assert_eq!(client_delay(&s, 10_000), Some(900));
    }
}
