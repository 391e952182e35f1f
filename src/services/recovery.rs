//! Accounts people can recover: verified email, password reset, sign-in by a mailed link or
//! code, email change, deleting one's own account, and re-authentication ("fresh").
//!
//! Requests that mail something only queue it (see `mail`) and answer the same whether or not
//! the address has an account, whether or not a send limit was hit: the caller learns nothing
//! about which addresses exist. Mailed tokens are spent here, once, for their one purpose.

use std::sync::Arc;

use secrecy::{ExposeSecret, SecretString};
use serde_json::json;
use subtle::ConstantTimeEq;
use tokio::sync::Notify;

use super::accounts::subject;
use super::credentials::{Admission, CredentialChecks};
use super::ending::Ending;
use super::factors::{Factors, FirstFactor, SecondFactor};
use super::freshness::Freshness;
use super::mail::code_hash;
use super::passkeys::Passkeys;
use super::sessions::{Issued, Sessions, TokenTimes};
use crate::clock::Clock;
use crate::config::AccountSettings;
use crate::credentials::tokens::{AccessClaims, opaque};
use crate::domain::assurance::{self, PASSWORD};
use crate::domain::{ClientInfo, Email, Password, PasswordPolicy, RevokeReason, SessionKind, User};
use crate::error::{Error, Result};
use crate::limits::rate_limit::RateLimits;
use crate::liveness::gate::SessionGate;
pub use crate::mail::templates::MailKind;
use crate::observability::audit::{AuditLog, Event};
use crate::observability::metrics::Metrics;
use crate::store::{MailGrant, NewMail, Precondition, PresentedToken, Store, Successor};

pub struct Recovery {
    store: Store,
    clock: Clock,
    checks: Arc<CredentialChecks>,
    sessions: Arc<Sessions>,
    factors: Arc<Factors>,
    passkeys: Arc<Passkeys>,
    ending: Arc<Ending>,
    gate: Arc<SessionGate>,
    rate_limits: Arc<RateLimits>,
    metrics: Arc<Metrics>,
    audit: AuditLog,
    policy: PasswordPolicy,
    settings: AccountSettings,
    /// Wakes this instance's mail sender when a message was queued.
    mail_waker: Arc<Notify>,
}

/// What [`Recovery`] is built from.
pub struct RecoveryParts {
    pub store: Store,
    pub clock: Clock,
    pub checks: Arc<CredentialChecks>,
    pub sessions: Arc<Sessions>,
    pub factors: Arc<Factors>,
    pub passkeys: Arc<Passkeys>,
    pub ending: Arc<Ending>,
    pub gate: Arc<SessionGate>,
    pub rate_limits: Arc<RateLimits>,
    pub metrics: Arc<Metrics>,
    pub audit: AuditLog,
    pub policy: PasswordPolicy,
    pub settings: AccountSettings,
    pub mail_waker: Arc<Notify>,
}

/// How a mailed sign-in is proved: the link's token, or the address and the code.
pub enum SignInProof<'a> {
    Token(&'a SecretString),
    Code { email: &'a str, code: &'a str },
}

impl Recovery {
    pub fn new(parts: RecoveryParts) -> Recovery {
        let RecoveryParts {
            store,
            clock,
            checks,
            sessions,
            factors,
            passkeys,
            ending,
            gate,
            rate_limits,
            metrics,
            audit,
            policy,
            settings,
            mail_waker,
        } = parts;
        Recovery {
            store,
            clock,
            checks,
            sessions,
            factors,
            passkeys,
            ending,
            gate,
            rate_limits,
            metrics,
            audit,
            policy,
            settings,
            mail_waker,
        }
    }

    /// `Ok` when the token's session authenticated within `accounts.fresh_auth_secs`; else
    /// `insufficient_user_authentication` (RFC 9470), and the client re-authenticates.
    pub fn require_fresh(&self, claims: &AccessClaims) -> Result<()> {
        Freshness::new(self.clock.clone(), self.settings.fresh_auth_secs).require(claims)
    }

    /// Queues `mails` unless the first one's recipient or the client is over its hourly
    /// budget; either way the caller answers the same. Returns whether they were queued.
    async fn queue(&self, mails: &[NewMail<'_>], client: &ClientInfo) -> Result<bool> {
        let Some(first) = mails.first() else {
            return Ok(false);
        };
        let within = self
            .rate_limits
            .mail_send(
                first.recipient,
                client,
                self.settings.sends_per_recipient_per_hour,
                self.settings.sends_per_client_per_hour,
                first.now,
            )
            .await?;
        if !within {
            self.metrics.mail.with_label_values(&["limited"]).inc();
            let subject = subject(first.user_id, None, client);
            let detail = json!({ "kind": first.kind });
            self.audit.record(Event::MailLimited, subject, detail).await;
            return Ok(false);
        }
        self.store.enqueue_mail(mails).await?;
        let queued = u64::try_from(mails.len()).unwrap_or(0);
        self.metrics
            .mail
            .with_label_values(&["queued"])
            .inc_by(queued);
        self.mail_waker.notify_one();
        Ok(true)
    }

    /// A verification mail to the user's address (`POST /v1/email/verify/send`).
    pub async fn send_verification(&self, user: &User, client: &ClientInfo) -> Result<()> {
        let email = match (&user.email, user.is_guest) {
            (Some(email), false) => email,
            _ => {
                return Err(Error::Forbidden(
                    "only an account with an email can verify it",
                ));
            }
        };
        if user.email_verified {
            return Ok(());
        }
        let mail = NewMail {
            kind: MailKind::VerifyEmail.as_str(),
            recipient: email,
            user_id: Some(&user.id),
            now: self.clock.now(),
        };
        if self.queue(&[mail], client).await? {
            let subject = subject(Some(&user.id), None, client);
            self.audit
                .record(Event::EmailVerificationSent, subject, json!({}))
                .await;
        }
        Ok(())
    }

    /// Spends a mailed token of `kind`, or `invalid_grant` (audited: a token that works for
    /// nothing is a guess, a spent link, or a link for another purpose).
    async fn redeem(
        &self,
        token: &SecretString,
        kind: MailKind,
        client: &ClientInfo,
    ) -> Result<MailGrant> {
        self.checks.attempt(client)?;
        let token = token.expose_secret();
        let now = self.clock.now();
        let grant = match opaque::looks_valid(token) {
            true => {
                self.store
                    .redeem_mail_token(&opaque::hash(token), kind.as_str(), now)
                    .await?
            }
            false => None,
        };
        if grant.is_none() {
            let detail = json!({ "credential": "mail_token", "purpose": kind.as_str() });
            let subject = subject(None, None, client);
            self.audit
                .record(Event::CredentialCheckFailed, subject, detail)
                .await;
        }
        grant.ok_or(Error::InvalidGrant)
    }

    /// `POST /v1/email/verify`: the address the token was sent to is verified, if it is still
    /// the user's.
    pub async fn verify_email(&self, token: &SecretString, client: &ClientInfo) -> Result<User> {
        let grant = self.redeem(token, MailKind::VerifyEmail, client).await?;
        let now = self.clock.now();
        if !self
            .store
            .verify_email(&grant.user_id, &grant.email, now)
            .await?
        {
            return Err(Error::InvalidGrant);
        }
        self.user_changed(&grant.user_id).await?;
        let subject = subject(Some(&grant.user_id), None, client);
        let detail = json!({ "email": grant.email });
        self.audit
            .record(Event::EmailVerified, subject, detail)
            .await;
        self.user(&grant).await
    }

    /// The user's address changed: this instance's snapshots of their sessions are re-read.
    async fn user_changed(&self, user_id: &str) -> Result<()> {
        let idle = self.sessions.lifetimes().idle_timeout_secs;
        let live = self
            .store
            .list_live_sessions(user_id, self.clock.now(), idle)
            .await?;
        for session in live {
            self.gate.changed(&session.id);
        }
        Ok(())
    }

    async fn user(&self, grant: &MailGrant) -> Result<User> {
        self.store
            .find_user(&grant.user_id)
            .await?
            .ok_or(Error::InvalidGrant)
    }

    /// `POST /v1/password/forgot` and `POST /v1/login/email`: queues the mail for `typed`
    /// (the sender sends it only if the address has an account). The same work, and the same
    /// answer, whether or not it has one.
    pub async fn request_mail(
        &self,
        kind: MailKind,
        typed: &str,
        client: &ClientInfo,
    ) -> Result<()> {
        self.checks.attempt(client)?;
        let email = Email::parse(typed)?;
        let mail = NewMail {
            kind: kind.as_str(),
            recipient: email.as_str(),
            user_id: None,
            now: self.clock.now(),
        };
        let queued = self.queue(&[mail], client).await?;
        let event = match kind {
            MailKind::SignIn => Event::EmailSignInRequested,
            _ => Event::PasswordResetRequested,
        };
        let detail = json!({ "email": email.as_str(), "queued": queued });
        self.audit
            .record(event, subject(None, None, client), detail)
            .await;
        Ok(())
    }

    /// `POST /v1/password/reset`: a new password through a mailed link. Every session of the
    /// user ends (reason `password_reset`) and a new one opens here.
    pub async fn reset_password(
        &self,
        token: &SecretString,
        new_password: SecretString,
        client: &ClientInfo,
    ) -> Result<Issued> {
        let grant = self.redeem(token, MailKind::ResetPassword, client).await?;
        let user = self.user(&grant).await?;
        let context: Vec<&str> = user.email.as_deref().into_iter().collect();
        let password = Password::parse(new_password, self.policy, &context)?;
        let hash = self.checks.hasher().hash(password.secret()).await?;
        let now = self.clock.now();
        let ended = self.store.reset_password(&user.id, &hash, now).await?;
        let detail = json!({ "revoked": ended.len() });
        let record = Some((
            Event::PasswordReset,
            subject(Some(&user.id), None, client),
            detail,
        ));
        self.ending
            .finish_ending(&ended, RevokeReason::PasswordReset, record)
            .await;
        // The mail proved the address; the owner should not stay locked out by the throttle.
        if let Some(email) = &user.email {
            let _ = self.checks.clear_throttle(email).await;
        }
        let user = User {
            email_verified: true,
            ..user
        };
        self.open(&user, client).await
    }

    /// A session for a user who proved their address by mail (or `mfa_required`, when the
    /// account has a second factor: the mail was only the first).
    async fn open(&self, user: &User, client: &ClientInfo) -> Result<Issued> {
        self.factors
            .require_second_factor(user, FirstFactor::Email, client)
            .await?;
        self.sessions
            .open_session(Precondition::EnabledUser, user, SessionKind::Email, client)
            .await?
            .ok_or(Error::Forbidden("this account is disabled"))
    }

    /// `POST /v1/login/email/verify`: signs in with a mailed link's token or the address and
    /// its code (5 wrong codes spend it; every wrong code counts like a wrong password).
    pub async fn verify_sign_in(
        &self,
        proof: SignInProof<'_>,
        client: &ClientInfo,
    ) -> Result<Issued> {
        let grant = match proof {
            SignInProof::Token(token) => self.redeem(token, MailKind::SignIn, client).await?,
            SignInProof::Code { email, code } => self.check_code(email, code, client).await?,
        };
        let now = self.clock.now();
        self.store
            .verify_email(&grant.user_id, &grant.email, now)
            .await?;
        let user = self.user(&grant).await?;
        let issued = self.open(&user, client).await?;
        let subject = subject(Some(&user.id), Some(&issued.session_id), client);
        self.audit
            .record(Event::EmailSignIn, subject, json!({}))
            .await;
        Ok(issued)
    }

    async fn check_code(&self, typed: &str, code: &str, client: &ClientInfo) -> Result<MailGrant> {
        self.checks.attempt(client)?;
        let email = Email::parse(typed).map_err(|_| Error::InvalidGrant)?;
        let Admission { slot, ticket } = self.checks.admit_check(email.as_str(), client).await?;
        drop(slot);
        let now = self.clock.now();
        let candidate = self.store.sign_in_code(email.as_str(), now).await?;
        let valid_shape = code.len() == 6 && code.bytes().all(|b| b.is_ascii_digit());
        let matched = candidate
            .as_ref()
            .filter(|c| valid_shape && bool::from(code_hash(&c.id, code).ct_eq(&c.code_hash)));
        let Some(found) = matched else {
            if let Some(candidate) = &candidate {
                self.store
                    .sign_in_code_failed(&candidate.id, self.settings.code_attempts, now)
                    .await?;
            }
            let user_id = candidate.as_ref().map(|c| c.user_id.as_str());
            let detail = json!({ "credential": "email_code", "purpose": "sign_in" });
            return Err(self
                .checks
                .check_failed(
                    ticket,
                    Event::CredentialCheckFailed,
                    subject(user_id, None, client),
                    detail,
                    Error::InvalidGrant,
                )
                .await);
        };
        self.checks.check_passed(ticket).await?;
        self.store
            .spend_mail_token(&found.id, now)
            .await?
            .ok_or(Error::InvalidGrant)
    }

    /// `POST /v1/email/change` (fresh): a confirmation to the new address and a notice to the
    /// current one, queued together.
    pub async fn change_email(
        &self,
        claims: &AccessClaims,
        user: &User,
        new_email: &str,
        client: &ClientInfo,
    ) -> Result<()> {
        self.require_fresh(claims)?;
        if user.is_guest {
            return Err(Error::Forbidden(
                "a guest has no email to change; upgrade instead",
            ));
        }
        let new_email = Email::parse(new_email)?;
        let now = self.clock.now();
        let mut mails = vec![NewMail {
            kind: MailKind::ChangeEmail.as_str(),
            recipient: new_email.as_str(),
            user_id: Some(&user.id),
            now,
        }];
        if let Some(old) = &user.email {
            mails.push(NewMail {
                kind: MailKind::EmailChanged.as_str(),
                recipient: old,
                user_id: Some(&user.id),
                now,
            });
        }
        let queued = self.queue(&mails, client).await?;
        let subject = subject(Some(&user.id), Some(&claims.sid), client);
        let detail = json!({ "new_email": new_email.as_str(), "queued": queued });
        self.audit
            .record(Event::EmailChangeRequested, subject, detail)
            .await;
        Ok(())
    }

    /// `POST /v1/email/change/confirm`: the new address becomes the user's, verified.
    pub async fn confirm_email_change(
        &self,
        token: &SecretString,
        client: &ClientInfo,
    ) -> Result<User> {
        let grant = self.redeem(token, MailKind::ChangeEmail, client).await?;
        let before = self.user(&grant).await?;
        let now = self.clock.now();
        if !self
            .store
            .change_email(&grant.user_id, &grant.email, now)
            .await?
        {
            return Err(Error::EmailTaken);
        }
        self.user_changed(&grant.user_id).await?;
        let subject = subject(Some(&grant.user_id), None, client);
        let detail = json!({ "from": before.email, "to": grant.email });
        self.audit
            .record(Event::EmailChanged, subject, detail)
            .await;
        self.user(&grant).await
    }

    /// `DELETE /v1/me` (fresh): the user with their sessions, tokens and factors.
    pub async fn delete_self(&self, claims: &AccessClaims, client: &ClientInfo) -> Result<()> {
        self.require_fresh(claims)?;
        let ended = self
            .store
            .delete_user(&claims.sub)
            .await?
            .ok_or(Error::InvalidToken("the user no longer exists"))?;
        let detail = json!({ "sessions": ended.len() });
        let record = Some((
            Event::UserDeleted,
            subject(Some(&claims.sub), None, client),
            detail,
        ));
        self.ending
            .finish_ending(&ended, RevokeReason::UserDeleted, record)
            .await;
        Ok(())
    }

    /// `POST /v1/reauth`: the same session, a fresh `auth_time`, the proved method added to
    /// its `amr`, a new refresh token (the presented one, if any, converges on it within the
    /// grace window).
    pub async fn reauthenticate(
        &self,
        claims: &AccessClaims,
        proof: ReauthProof,
        presented: Option<SecretString>,
        client: &ClientInfo,
    ) -> Result<Issued> {
        self.checks.attempt(client)?;
        let methods = match proof {
            ReauthProof::Password(password) => {
                self.check_password(claims, &password, client).await?;
                vec![PASSWORD]
            }
            ReauthProof::Passkey {
                challenge_id,
                credential,
            } => {
                let asserted = self
                    .passkeys
                    .assert(&challenge_id, credential, "reauth", client)
                    .await?;
                if asserted.user.id != claims.sub {
                    return Err(Error::InvalidGrant);
                }
                asserted.methods()
            }
            ReauthProof::Factor(factor) => {
                let user = self
                    .store
                    .find_user(&claims.sub)
                    .await?
                    .ok_or(Error::InvalidToken("the session is no longer live"))?;
                if !self.factors.has_totp(&user.id).await? {
                    return Err(Error::Forbidden("this account has no authenticator"));
                }
                vec![self.factors.check(&user, &factor, "reauth", client).await?]
            }
        };
        self.refresh_authentication(claims, &methods, presented, client)
            .await
    }

    async fn check_password(
        &self,
        claims: &AccessClaims,
        password: &SecretString,
        client: &ClientInfo,
    ) -> Result<()> {
        let account = claims
            .email
            .clone()
            .unwrap_or_else(|| claims.sub.to_string());
        let Admission { slot, ticket } = self.checks.admit_check(&account, client).await?;
        let stored = self.store.password_hash(&claims.sub).await?;
        let has_password = stored.is_some();
        let verified = self
            .checks
            .hasher()
            .verify_in(slot, password, stored)
            .await?;
        if !verified {
            let subject = subject(Some(&claims.sub), Some(&claims.sid), client);
            let detail = json!({ "credential": "password", "purpose": "reauth" });
            let answer = if has_password {
                Error::InvalidCredentials
            } else {
                Error::Forbidden("this account has no password")
            };
            return Err(self
                .checks
                .check_failed(
                    ticket,
                    Event::CredentialCheckFailed,
                    subject,
                    detail,
                    answer,
                )
                .await);
        }
        self.checks.check_passed(ticket).await
    }

    /// The session authenticated again now, by `method`.
    async fn refresh_authentication(
        &self,
        claims: &AccessClaims,
        methods: &[&str],
        presented: Option<SecretString>,
        client: &ClientInfo,
    ) -> Result<Issued> {
        if presented
            .as_ref()
            .is_some_and(|t| !opaque::looks_valid(t.expose_secret()))
        {
            return Err(Error::InvalidRefreshToken);
        }
        let refresh_token = opaque::generate();
        let presented_hash = presented.as_ref().map(|t| opaque::hash(t.expose_secret()));
        let sealed = presented
            .as_ref()
            .map(|t| opaque::seal_successor(t, &refresh_token));
        let presented =
            presented_hash
                .as_deref()
                .zip(sealed.as_deref())
                .map(|(hash, successor_sealed)| PresentedToken {
                    hash,
                    successor_sealed,
                });
        let successor_id = uuid::Uuid::now_v7().to_string();
        let successor = Successor {
            id: &successor_id,
            hash: &opaque::hash(refresh_token.expose_secret()),
        };
        let now = self.clock.now();
        let before = self.gate.live(&claims.sid, &claims.sub, now).await?;
        let amr = assurance::amr_with(&before.session.amr, methods);
        let done = self
            .store
            .reauthenticate(&claims.sid, presented.as_ref(), successor, &amr, now)
            .await?;
        if !done {
            return Err(Error::InvalidRefreshToken);
        }
        self.gate.changed(&claims.sid);
        let snapshot = self.gate.live(&claims.sid, &claims.sub, now).await?;
        let subject = subject(Some(&claims.sub), Some(&claims.sid), client);
        let detail = json!({ "methods": methods });
        self.audit
            .record(Event::Reauthenticated, subject, detail)
            .await;
        let idle = self.sessions.lifetimes().idle_timeout_secs;
        let session = &snapshot.session;
        let times = TokenTimes {
            auth_time: now,
            session_ends_at: session.ends_at(idle),
        };
        self.sessions.issue(
            snapshot.user.clone(),
            session.id.clone(),
            session.amr.clone(),
            refresh_token,
            times,
        )
    }
}

/// What a re-authentication presents.
pub enum ReauthProof {
    Password(SecretString),
    /// A TOTP code or a recovery code.
    Factor(SecondFactor),
    /// An assertion for a challenge from `POST /v1/login/passkey/start`.
    Passkey {
        challenge_id: String,
        credential: serde_json::Value,
    },
}
