//! Second factors: a TOTP authenticator with its recovery codes (enroll, confirm, disable),
//! the `mfa_required` answer a right first factor gets when one is enrolled, and completing
//! that login with a code. Checking a code (for a login or a re-authentication) goes through
//! the one credential-check step: throttled per account and address, audited when wrong.

use std::sync::Arc;

use secrecy::{ExposeSecret, SecretString};
use serde_json::json;

use super::accounts::subject;
use super::credentials::CredentialChecks;
use super::freshness::Freshness;
use super::sessions::{Issued, Sessions};
use crate::clock::Clock;
use crate::credentials::tokens::sealing::KeyEncryption;
use crate::credentials::tokens::{AccessClaims, opaque};
use crate::credentials::totp::{self, TotpSecret};
use crate::domain::assurance::{self, OTP, RECOVERY_CODE};
use crate::domain::{ClientInfo, SessionKind, User, UserId};
use crate::error::{Error, Result};
use crate::observability::audit::{AuditLog, Event};
use crate::store::{NewMfaChallenge, Precondition, Store};

/// An `mfa_token` lives this long and allows this many wrong codes.
pub const MFA_TOKEN_TTL_SECS: i64 = 300;
pub const MFA_MAX_ATTEMPTS: i64 = 5;
/// The sealing context of TOTP secrets.
const TOTP_CONTEXT: &str = "totp secret";

/// What stands in for the password's second half.
pub enum SecondFactor {
    /// A code from the authenticator app.
    Code(SecretString),
    /// One of the ten recovery codes.
    RecoveryCode(SecretString),
}

impl SecondFactor {
    fn credential(&self) -> &'static str {
        match self {
            SecondFactor::Code(_) => "totp",
            SecondFactor::RecoveryCode(_) => "recovery_code",
        }
    }
}

/// A new authenticator, shown once.
pub struct Enrollment {
    pub secret: SecretString,
    pub otpauth_uri: SecretString,
}

/// How a sign-in proved its first factor: what its session will start with.
#[derive(Debug, Clone, Copy)]
pub enum FirstFactor {
    Password,
    Email,
}

impl FirstFactor {
    fn kind(self) -> SessionKind<'static> {
        match self {
            FirstFactor::Password => SessionKind::Password,
            FirstFactor::Email => SessionKind::Email,
        }
    }

    fn as_str(self) -> &'static str {
        self.kind().as_str()
    }

    fn parse(stored: &str) -> FirstFactor {
        match stored {
            "email" => FirstFactor::Email,
            _ => FirstFactor::Password,
        }
    }
}

pub struct Factors {
    store: Store,
    clock: Clock,
    checks: Arc<CredentialChecks>,
    sessions: Arc<Sessions>,
    sealing: Arc<KeyEncryption>,
    audit: AuditLog,
    freshness: Freshness,
    /// The issuer authenticator apps show (`mail.product_name`).
    issuer: String,
}

/// What [`Factors`] is built from.
pub struct FactorsParts {
    pub store: Store,
    pub clock: Clock,
    pub checks: Arc<CredentialChecks>,
    pub sessions: Arc<Sessions>,
    pub sealing: Arc<KeyEncryption>,
    pub audit: AuditLog,
    pub freshness: Freshness,
    pub issuer: String,
}

impl Factors {
    pub fn new(parts: FactorsParts) -> Factors {
        let FactorsParts {
            store,
            clock,
            checks,
            sessions,
            sealing,
            audit,
            freshness,
            issuer,
        } = parts;
        Factors {
            store,
            clock,
            checks,
            sessions,
            sealing,
            audit,
            freshness,
            issuer,
        }
    }

    /// `POST /v1/mfa/totp`: a pending authenticator (replacing a pending one); `409` while a
    /// confirmed one exists.
    pub async fn enroll_totp(
        &self,
        claims: &AccessClaims,
        user: &User,
        client: &ClientInfo,
    ) -> Result<Enrollment> {
        self.freshness.require(claims)?;
        let session_id = claims.sid.as_str();
        if user.is_guest {
            return Err(Error::Forbidden(
                "a guest cannot add a second factor: upgrade the account first",
            ));
        }
        let secret = TotpSecret::generate();
        let sealed = self
            .sealing
            .seal_secret(TOTP_CONTEXT, &user.id, secret.as_bytes())?;
        if !self
            .store
            .put_pending_totp(&user.id, &sealed, self.clock.now())
            .await?
        {
            return Err(Error::AlreadyEnabled(
                "this account already has an authenticator: disable it first",
            ));
        }
        let account = user.email.as_deref().unwrap_or(&user.id);
        let subject = subject(Some(&user.id), Some(session_id), client);
        self.audit
            .record(Event::TotpEnrolled, subject, json!({}))
            .await;
        Ok(Enrollment {
            secret: secret.base32(&self.issuer),
            otpauth_uri: secret.otpauth_uri(&self.issuer, account),
        })
    }

    /// `POST /v1/mfa/totp/confirm`: the first code turns the pending authenticator on and
    /// returns ten recovery codes (shown once).
    pub async fn confirm_totp(
        &self,
        user: &User,
        session_id: &str,
        code: &SecretString,
        client: &ClientInfo,
    ) -> Result<Vec<SecretString>> {
        self.checks.attempt(client)?;
        let Some(stored) = self.store.totp_of(&user.id).await? else {
            return Err(Error::NotFound("no authenticator is being enrolled"));
        };
        if stored.confirmed_at.is_some() {
            return Err(Error::AlreadyEnabled(
                "the authenticator is already confirmed",
            ));
        }
        let account = throttle_account(user);
        let admission = self.checks.admit_check(&account, client).await?;
        let secret = self.open_secret(&user.id, &stored.secret_sealed)?;
        let step = secret.matching_step(code.expose_secret(), self.clock.now(), stored.last_step);
        let codes = totp::new_recovery_codes();
        let hashes: Vec<Vec<u8>> = codes.iter().map(|(_, hash)| hash.clone()).collect();
        let confirmed = match step {
            Some(step) => {
                self.store
                    .confirm_totp(&user.id, step, &hashes, self.clock.now())
                    .await?
            }
            None => false,
        };
        let subject = subject(Some(&user.id), Some(session_id), client);
        if !confirmed {
            let detail = json!({ "credential": "totp", "purpose": "confirm" });
            return Err(self
                .checks
                .check_failed(
                    admission.ticket,
                    Event::CredentialCheckFailed,
                    subject,
                    detail,
                    Error::InvalidGrant,
                )
                .await);
        }
        self.checks.check_passed(admission.ticket).await?;
        self.audit
            .record(Event::TotpEnabled, subject, json!({}))
            .await;
        Ok(codes.into_iter().map(|(code, _)| code).collect())
    }

    /// `DELETE /v1/mfa/totp`: the authenticator and its recovery codes go.
    pub async fn disable_totp(&self, claims: &AccessClaims, client: &ClientInfo) -> Result<()> {
        self.freshness.require(claims)?;
        let (user_id, session_id) = (&claims.sub, claims.sid.as_str());
        if !self.store.delete_totp(user_id).await? {
            return Err(Error::NotFound("this account has no authenticator"));
        }
        let subject = subject(Some(user_id), Some(session_id), client);
        self.audit
            .record(Event::TotpDisabled, subject, json!({}))
            .await;
        Ok(())
    }

    /// After a right first factor: `Ok` when no second factor is enrolled, else the
    /// `mfa_required` answer with a new single-use `mfa_token`.
    pub async fn require_second_factor(
        &self,
        user: &User,
        first: FirstFactor,
        client: &ClientInfo,
    ) -> Result<()> {
        if !self.store.has_totp(&user.id).await? {
            return Ok(());
        }
        let token = opaque::generate();
        let now = self.clock.now();
        let id = uuid::Uuid::now_v7().to_string();
        self.store
            .create_mfa_challenge(&NewMfaChallenge {
                id: &id,
                token_hash: &opaque::hash(token.expose_secret()),
                user_id: &user.id,
                first_factor: first.as_str(),
                now,
                expires_at: now + MFA_TOKEN_TTL_SECS,
            })
            .await?;
        let detail = json!({ "first_factor": first.as_str() });
        self.audit
            .record(
                Event::MfaChallenged,
                subject(Some(&user.id), None, client),
                detail,
            )
            .await;
        Err(Error::MfaRequired {
            mfa_token: token,
            methods: vec!["totp", "recovery_code"],
        })
    }

    /// `POST /v1/login/mfa`: the second factor for an `mfa_token`; opens the session.
    #[tracing::instrument(name = "login_mfa", skip_all)]
    pub async fn complete_login(
        &self,
        mfa_token: &SecretString,
        proof: SecondFactor,
        client: &ClientInfo,
    ) -> Result<Issued> {
        self.checks.attempt(client)?;
        let token = mfa_token.expose_secret();
        if !opaque::looks_valid(token) {
            return Err(Error::InvalidGrant);
        }
        let now = self.clock.now();
        let Some(challenge) = self
            .store
            .find_mfa_challenge(&opaque::hash(token), now, MFA_MAX_ATTEMPTS)
            .await?
        else {
            let detail = json!({ "credential": "mfa_token", "purpose": "login" });
            self.audit
                .record(
                    Event::CredentialCheckFailed,
                    subject(None, None, client),
                    detail,
                )
                .await;
            return Err(Error::InvalidGrant);
        };
        let user_id = UserId::trusted(challenge.user_id.clone());
        let user = self
            .store
            .find_user(&user_id)
            .await?
            .ok_or(Error::InvalidGrant)?;
        let method = match self.check(&user, &proof, "login", client).await {
            Ok(method) => method,
            Err(error) => {
                if matches!(error, Error::InvalidGrant) {
                    self.store.mfa_challenge_failed(&challenge.id).await?;
                }
                return Err(error);
            }
        };
        if !self.store.spend_mfa_challenge(&challenge.id, now).await? {
            return Err(Error::InvalidGrant);
        }
        let first = FirstFactor::parse(&challenge.first_factor).kind();
        let amr = assurance::amr_with(&first.amr(), &[method]);
        let issued = self
            .sessions
            .open_session_proven(Precondition::EnabledUser, &user, first, amr, client)
            .await?
            .ok_or(Error::InvalidGrant)?;
        let subject = subject(Some(&user.id), Some(&issued.session_id), client);
        let detail = json!({ "second_factor": proof.credential() });
        self.audit
            .record(Event::LoginSucceeded, subject, detail)
            .await;
        Ok(issued)
    }

    /// Checks a code of `user`'s (each accepted once), throttled and audited like a password;
    /// returns the `amr` method it proved. Wrong: `invalid_grant`.
    pub async fn check(
        &self,
        user: &User,
        proof: &SecondFactor,
        purpose: &str,
        client: &ClientInfo,
    ) -> Result<&'static str> {
        let account = throttle_account(user);
        let admission = self.checks.admit_check(&account, client).await?;
        let accepted = match proof {
            SecondFactor::Code(code) => self.accept_code(&user.id, code).await?,
            SecondFactor::RecoveryCode(code) => {
                let hash = totp::recovery_code_hash(code.expose_secret());
                let spent = self.store.has_totp(&user.id).await?
                    && self
                        .store
                        .spend_recovery_code(&user.id, &hash, self.clock.now())
                        .await?;
                if spent {
                    let left = self.store.unused_recovery_codes(&user.id).await?;
                    let detail = json!({ "code": totp::code_fingerprint(&hash), "left": left });
                    self.audit
                        .record(
                            Event::RecoveryCodeUsed,
                            subject(Some(&user.id), None, client),
                            detail,
                        )
                        .await;
                }
                spent
            }
        };
        if !accepted {
            let detail = json!({ "credential": proof.credential(), "purpose": purpose });
            let subject = subject(Some(&user.id), None, client);
            return Err(self
                .checks
                .check_failed(
                    admission.ticket,
                    Event::CredentialCheckFailed,
                    subject,
                    detail,
                    Error::InvalidGrant,
                )
                .await);
        }
        self.checks.check_passed(admission.ticket).await?;
        Ok(match proof {
            SecondFactor::Code(_) => OTP,
            SecondFactor::RecoveryCode(_) => RECOVERY_CODE,
        })
    }

    /// Whether `code` is right for the user's confirmed authenticator now, spending its step.
    async fn accept_code(&self, user_id: &str, code: &SecretString) -> Result<bool> {
        let Some(stored) = self.store.totp_of(user_id).await? else {
            return Ok(false);
        };
        if stored.confirmed_at.is_none() {
            return Ok(false);
        }
        let secret = self.open_secret(user_id, &stored.secret_sealed)?;
        let Some(step) =
            secret.matching_step(code.expose_secret(), self.clock.now(), stored.last_step)
        else {
            return Ok(false);
        };
        Ok(self.store.spend_totp_step(user_id, step).await?)
    }

    /// Whether the user has a confirmed authenticator.
    pub async fn has_totp(&self, user_id: &str) -> Result<bool> {
        Ok(self.store.has_totp(user_id).await?)
    }

    fn open_secret(&self, user_id: &str, sealed: &[u8]) -> Result<TotpSecret> {
        let bytes = self.sealing.open_secret(TOTP_CONTEXT, user_id, sealed)?;
        if !totp::looks_like_secret(&bytes) {
            return Err(Error::Internal(anyhow::anyhow!(
                "the TOTP secret of user {user_id} is damaged"
            )));
        }
        Ok(TotpSecret::from_bytes(bytes))
    }
}

/// Wrong codes count against the same account as wrong passwords: the address, else the id.
fn throttle_account(user: &User) -> String {
    user.email.clone().unwrap_or_else(|| user.id.to_string())
}
