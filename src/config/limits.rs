//! Per-client rate limits (the policy lives in the rate limit module).

use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
pub struct RateLimitSettings {
    /// Sustained attempts per minute per client IP; 0 turns the limit off.
    pub credentials_per_minute: u32,
    /// Attempts allowed at once before the sustained rate applies.
    pub credentials_burst: u32,
    /// `POST /v1/guest` per client address per minute, counted in the database so every
    /// instance shares the budget; 0 turns it off.
    pub guests_per_minute: i64,
}
