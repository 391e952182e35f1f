//! "Fresh": the rule the sensitive endpoints share (API.md, "step-up"). A session is fresh
//! when it authenticated within `accounts.fresh_auth_secs`; otherwise the client hears the RFC
//! 9470 challenge and re-authenticates (`POST /v1/reauth`).

use crate::clock::Clock;
use crate::credentials::tokens::AccessClaims;
use crate::error::{Error, Result};

#[derive(Clone)]
pub struct Freshness {
    clock: Clock,
    max_age: i64,
}

impl Freshness {
    pub fn new(clock: Clock, max_age: i64) -> Freshness {
        Freshness { clock, max_age }
    }

    /// `Ok` when the token's session authenticated within the window; else
    /// `insufficient_user_authentication` with the window as `max_age`.
    pub fn require(&self, claims: &AccessClaims) -> Result<()> {
        if self.clock.now() - claims.auth_time() <= self.max_age {
            Ok(())
        } else {
            Err(Error::InsufficientAuthentication {
                max_age: self.max_age,
            })
        }
    }
}
