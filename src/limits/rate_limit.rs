//! Per-client-IP rate limits on the endpoints that take credentials (signup, login, password
//! change, bridge): a brute-force or credential-stuffing run from one address gets
//! `429 rate_limited` with `Retry-After` instead of argon2 time. Counters are per instance (a
//! client spread over N instances gets N times the budget); they are not session state, so
//! instances disagreeing here never changes who is signed in.

use std::collections::HashMap;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Mutex;

use crate::config::RateLimitSettings;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota};

use crate::domain::ClientInfo;
use crate::error::Error;
use crate::store::Store;

pub struct RateLimits {
    credentials: Option<DefaultKeyedRateLimiter<Option<IpAddr>>>,
    clock: DefaultClock,
    store: Store,
    guests_per_minute: i64,
    /// Addresses the database found over their guest budget, with the window it was in. Within
    /// a window the shared count only grows, so this can only be late, never wrong: an address
    /// known to be over is refused without a database write; the database stays the authority.
    guests_over: Mutex<HashMap<String, i64>>,
}

const GUEST_WINDOW_SECS: i64 = 60;
/// Mail budgets are per hour; their windows are purged an hour after they start, when they end.
const MAIL_WINDOW_SECS: i64 = 3600;

impl RateLimits {
    pub fn new(settings: &RateLimitSettings, store: Store) -> RateLimits {
        let credentials = NonZeroU32::new(settings.credentials_per_minute).map(|per_minute| {
            let burst = NonZeroU32::new(settings.credentials_burst).unwrap_or(per_minute);
            DefaultKeyedRateLimiter::keyed(Quota::per_minute(per_minute).allow_burst(burst))
        });
        RateLimits {
            credentials,
            clock: DefaultClock::default(),
            store,
            guests_per_minute: settings.guests_per_minute,
            guests_over: Mutex::new(HashMap::new()),
        }
    }

    /// Spends one guest creation of this client's per-minute budget, which every instance
    /// shares (a fixed window counted in the database), or says how long to wait.
    pub async fn guest(&self, client: &ClientInfo, now: i64) -> Result<(), Error> {
        if self.guests_per_minute <= 0 {
            return Ok(());
        }
        let key = format!("guest:{}", client.limit_key_text());
        let window_start = now - now.rem_euclid(GUEST_WINDOW_SECS);
        let over = || Error::RateLimited((window_start + GUEST_WINDOW_SECS - now).max(1) as u64);
        if self.guests_over.lock().expect("limits lock").get(&key) == Some(&window_start) {
            return Err(over());
        }
        let hits = self.store.hit_rate_window(&key, window_start).await?;
        if hits > self.guests_per_minute {
            self.guests_over
                .lock()
                .expect("limits lock")
                .insert(key, window_start);
            return Err(over());
        }
        Ok(())
    }

    /// Counts one mail to `recipient` requested by `client` in the shared hourly windows; `false`
    /// when either is over its budget (0 = no limit). The caller answers the same either way.
    pub async fn mail_send(
        &self,
        recipient: &str,
        client: &ClientInfo,
        per_recipient: i64,
        per_client: i64,
        now: i64,
    ) -> Result<bool, Error> {
        let window_start = now - now.rem_euclid(MAIL_WINDOW_SECS);
        if per_client > 0 {
            let key = format!("mail-from:{}", client.limit_key_text());
            if self.store.hit_rate_window(&key, window_start).await? > per_client {
                return Ok(false);
            }
        }
        if per_recipient > 0 {
            let key = format!("mail-to:{recipient}");
            if self.store.hit_rate_window(&key, window_start).await? > per_recipient {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Spends one credential attempt for this client, or says how long to wait.
    pub fn credentials(&self, client: &ClientInfo) -> Result<(), Error> {
        let Some(limiter) = &self.credentials else {
            return Ok(());
        };
        limiter.check_key(&client.limit_key()).map_err(|not_until| {
            let wait = not_until.wait_time_from(self.clock.now());
            Error::RateLimited(wait.as_secs().max(1))
        })
    }

    /// Forgets clients whose budget is full again, so the table stays small.
    pub fn tidy(&self, now: i64) {
        let window_start = now - now.rem_euclid(GUEST_WINDOW_SECS);
        self.guests_over
            .lock()
            .expect("limits lock")
            .retain(|_, window| *window == window_start);
        if let Some(limiter) = &self.credentials {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
    }
}
