//! Every check of a credential — a login's password, the current password of a password
//! change, and the re-authentications and second factors to come — goes through one step, so
//! none of them can be guessed faster than a login:
//! 1. a place in the hashing queue is taken first, so a full queue answers `503` at once,
//!    before any database work;
//! 2. the shared throttle (`throttle`) admits the attempt and counts it in advance, per
//!    account and client address (`429` with `Retry-After` when blocked);
//! 3. the caller checks the credential in that place;
//! 4. a failure is counted against the account from every address and audited (with the
//!    block it caused); a success clears the address's count.

use serde_json::{Value, json};

use std::sync::Arc;

use crate::clock::Clock;
use crate::credentials::passwords::{HashSlot, PasswordHasher};
use crate::domain::ClientInfo;
use crate::error::{Error, Result};
use crate::limits::rate_limit::RateLimits;
use crate::limits::throttle::{Admitted, LoginThrottle, Verdict};
use crate::observability::audit::{AuditLog, AuditSubject, Event};
use crate::observability::metrics::Metrics;

/// The one step every credential check goes through (see the module docs).
pub struct CredentialChecks {
    hasher: PasswordHasher,
    throttle: Arc<LoginThrottle>,
    rate_limits: Arc<RateLimits>,
    clock: Clock,
    metrics: Arc<Metrics>,
    audit: AuditLog,
}

/// A credential check the throttle let through.
pub(super) struct Admission {
    /// The hashing queue's place for the check.
    pub slot: HashSlot,
    pub ticket: CheckTicket,
}

/// What the end of an admitted check must report back.
pub(super) struct CheckTicket {
    account: String,
    address: String,
    admitted: Admitted,
}

impl CredentialChecks {
    pub fn new(
        hasher: PasswordHasher,
        throttle: Arc<LoginThrottle>,
        rate_limits: Arc<RateLimits>,
        clock: Clock,
        metrics: Arc<Metrics>,
        audit: AuditLog,
    ) -> CredentialChecks {
        CredentialChecks {
            hasher,
            throttle,
            rate_limits,
            clock,
            metrics,
            audit,
        }
    }

    /// The argon2 queue the checks run in (new passwords are hashed in it too).
    pub fn hasher(&self) -> &PasswordHasher {
        &self.hasher
    }

    /// Spends one of the client's rate-limited credential attempts (signup, login, password
    /// change, bridge, upgrade), or says how long to wait.
    pub fn attempt(&self, client: &ClientInfo) -> Result<()> {
        self.rate_limits.credentials(client)
    }

    /// Admits one check of a credential of `account` (the normalized email, or the input as
    /// typed) from `client`, or refuses it: `503` when the hashing queue is full, `429` while
    /// the account is blocked from this address. Waits when the account is under attack.
    pub(super) async fn admit_check(
        &self,
        account: &str,
        client: &ClientInfo,
    ) -> Result<Admission> {
        let slot = self.hasher.reserve()?;
        let address = client.limit_key_text();
        let verdict = self
            .throttle
            .admit(account, &address, self.clock.now())
            .await?;
        let admitted = match verdict {
            Verdict::Open(admitted) => admitted,
            Verdict::Slowed(pause, admitted) => {
                tokio::time::sleep(pause).await;
                admitted
            }
            Verdict::Blocked(retry_after) => {
                self.metrics.login_throttled.inc();
                return Err(Error::RateLimited(retry_after.max(1) as u64));
            }
        };
        Ok(Admission {
            slot,
            ticket: CheckTicket {
                account: account.to_string(),
                address,
                admitted,
            },
        })
    }

    /// An admitted check failed: counts it against the account, records `event` with `detail`
    /// (and the block it caused, if any). Returns the error to answer with.
    pub(super) async fn check_failed(
        &self,
        ticket: CheckTicket,
        event: Event,
        subject: AuditSubject<'_>,
        detail: Value,
        answer: Error,
    ) -> Error {
        let (user_id, client) = (subject.user_id, subject.client);
        self.audit.record(event, subject, detail).await;
        let now = self.clock.now();
        let failure = match self
            .throttle
            .failed(&ticket.account, ticket.admitted, now)
            .await
        {
            Ok(failure) => failure,
            Err(error) => return error.into(),
        };
        if failure.blocked_client || failure.blocked_account {
            let detail = json!({
                "email": ticket.account,
                "account_wide": failure.blocked_account,
                "after": event.as_str(),
            });
            let subject = AuditSubject {
                user_id,
                session_id: None,
                client,
            };
            self.audit
                .record(Event::LoginThrottled, subject, detail)
                .await;
        }
        answer
    }

    /// Forgets the failed checks of `account` from every address (its owner proved control of
    /// it another way, or an operator asked).
    pub async fn clear_throttle(&self, account: &str) -> Result<u64> {
        Ok(self.throttle.clear(account).await?)
    }

    /// An admitted check passed: the address's failures are forgotten.
    pub(super) async fn check_passed(&self, ticket: CheckTicket) -> Result<()> {
        Ok(self
            .throttle
            .succeeded(&ticket.account, &ticket.address)
            .await?)
    }
}
