//! Accounts: signup and guest (with login, the ways to open a session locally), a guest's
//! upgrade to a permanent account, and password change.

use std::sync::Arc;

use secrecy::{ExposeSecret, SecretString};
use serde_json::json;

use super::credentials::{Admission, CredentialChecks};
use super::ending::Ending;
use super::factors::Factors;
use super::login::throttle_account;
use super::sessions::{Issued, Sessions, TokenTimes};
use crate::clock::Clock;
use crate::credentials::tokens::opaque;
use crate::domain::User;
use crate::domain::{
    ClientInfo, Email, Password, PasswordPolicy, RevokeReason, SessionId, SessionKind, UserId,
};
use crate::error::{Error, Result};
use crate::limits::rate_limit::RateLimits;
use crate::liveness::gate::SessionGate;
use crate::observability::audit::{AuditLog, AuditSubject, Event};
use crate::observability::metrics::Metrics;
use crate::store::{GuestUpgrade, NewUser, Precondition, PresentedToken, Store, UpgradeOutcome};

/// The ways a user comes to be and signs in locally, and what they change about themselves.
pub struct Accounts {
    pub(super) store: Store,
    pub(super) clock: Clock,
    pub(super) checks: Arc<CredentialChecks>,
    pub(super) sessions: Arc<Sessions>,
    pub(super) factors: Arc<Factors>,
    pub(super) ending: Arc<Ending>,
    pub(super) gate: Arc<SessionGate>,
    pub(super) rate_limits: Arc<RateLimits>,
    pub(super) metrics: Arc<Metrics>,
    pub(super) audit: AuditLog,
    pub(super) policy: PasswordPolicy,
    /// `accounts.require_verified_email`.
    pub(super) require_verified_email: bool,
}

/// What [`Accounts`] is built from.
pub struct AccountsParts {
    pub store: Store,
    pub clock: Clock,
    pub checks: Arc<CredentialChecks>,
    pub sessions: Arc<Sessions>,
    pub factors: Arc<Factors>,
    pub ending: Arc<Ending>,
    pub gate: Arc<SessionGate>,
    pub rate_limits: Arc<RateLimits>,
    pub metrics: Arc<Metrics>,
    pub audit: AuditLog,
    pub policy: PasswordPolicy,
    pub require_verified_email: bool,
}

/// What a guest upgrade needs besides the guest's live session.
pub struct Upgrade<'a> {
    pub email: &'a str,
    pub password: SecretString,
    /// The guest's current refresh token, when the client presented it (body or cookie).
    pub refresh_token: Option<SecretString>,
}

impl Accounts {
    pub fn new(parts: AccountsParts) -> Accounts {
        let AccountsParts {
            store,
            clock,
            checks,
            sessions,
            factors,
            ending,
            gate,
            rate_limits,
            metrics,
            audit,
            policy,
            require_verified_email,
        } = parts;
        Accounts {
            store,
            clock,
            checks,
            sessions,
            factors,
            ending,
            gate,
            rate_limits,
            metrics,
            audit,
            policy,
            require_verified_email,
        }
    }

    /// Validates a new email and password (the password may not lean on the email) and
    /// hashes the password.
    async fn new_credentials(
        &self,
        email: &str,
        password: SecretString,
    ) -> Result<(Email, String)> {
        let email = Email::parse(email)?;
        let password = Password::parse(password, self.policy, &[email.as_str()])?;
        let hash = self.checks.hasher().hash(password.secret()).await?;
        Ok((email, hash))
    }

    #[tracing::instrument(name = "signup", skip_all)]
    pub async fn signup(
        &self,
        email: &str,
        password: SecretString,
        client: &ClientInfo,
    ) -> Result<Issued> {
        self.checks.attempt(client)?;
        let (email, hash) = self.new_credentials(email, password).await?;
        let user = new_user(Some(email.as_str().to_string()), false, self.clock.now());
        self.create_user_with_session(
            &user,
            Some(&hash),
            SessionKind::Password,
            client,
            Event::Signup,
        )
        .await
    }

    #[tracing::instrument(name = "guest", skip_all)]
    pub async fn guest(&self, client: &ClientInfo) -> Result<Issued> {
        let now = self.clock.now();
        self.rate_limits.guest(client, now).await?;
        let user = new_user(None, true, now);
        self.create_user_with_session(&user, None, SessionKind::Guest, client, Event::Guest)
            .await
    }

    /// Inserts a new user and opens their first session in one transaction.
    async fn create_user_with_session(
        &self,
        user: &User,
        password_hash: Option<&str>,
        kind: SessionKind<'_>,
        client: &ClientInfo,
        event: Event,
    ) -> Result<Issued> {
        let new_user = NewUser {
            id: &user.id,
            email: user.email.as_deref(),
            password_hash,
            is_guest: user.is_guest,
            email_verified: false,
            now: user.created_at,
        };
        let issued = self
            .sessions
            .open_session(Precondition::NewUser(&new_user), user, kind, client)
            .await?
            .ok_or(Error::EmailTaken)?;
        let session_id = issued.session_id.as_str();
        tracing::info!(user_id = %user.id, %session_id, kind = kind.as_str(), "new user");
        let subject = subject(Some(&user.id), Some(session_id), client);
        self.audit.record(event, subject, json!({})).await;
        Ok(issued)
    }

    /// A guest becomes a permanent user in place: same user id, the calling session now a
    /// permanent password session with a new refresh token, email and password set.
    #[tracing::instrument(name = "upgrade", skip_all)]
    pub async fn upgrade(
        &self,
        guest: &User,
        session_id: &SessionId,
        session_created_at: i64,
        upgrade: Upgrade<'_>,
        client: &ClientInfo,
    ) -> Result<Issued> {
        self.checks.attempt(client)?;
        if !guest.is_guest {
            return Err(Error::Forbidden("only a guest session can be upgraded"));
        }
        let (email, hash) = self
            .new_credentials(upgrade.email, upgrade.password)
            .await?;
        let presented = upgrade.refresh_token;
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
        let kind = SessionKind::Password;
        let amr = kind.amr();
        let permanent_ttl = self.sessions.lifetimes().permanent_ttl_secs;
        let outcome = self
            .store
            .upgrade_guest(&GuestUpgrade {
                user_id: &guest.id,
                session_id,
                email: email.as_str(),
                password_hash: &hash,
                session_kind: kind.as_str(),
                session_amr: &amr,
                session_expires_at: session_created_at + permanent_ttl,
                refresh_token_id: &uuid::Uuid::now_v7().to_string(),
                refresh_token_hash: &opaque::hash(refresh_token.expose_secret()),
                presented: presented_hash.as_deref().zip(sealed.as_deref()).map(
                    |(hash, successor_sealed)| PresentedToken {
                        hash,
                        successor_sealed,
                    },
                ),
                now: self.clock.now(),
            })
            .await?;
        match outcome {
            UpgradeOutcome::Upgraded => {}
            UpgradeOutcome::EmailTaken => return Err(Error::EmailTaken),
            UpgradeOutcome::ForeignRefreshToken => return Err(Error::InvalidRefreshToken),
            UpgradeOutcome::NotAGuest => {
                return Err(Error::Forbidden("only a guest session can be upgraded"));
            }
        }
        self.gate.changed(session_id);
        let user = User {
            email: Some(email.as_str().to_string()),
            is_guest: false,
            ..guest.clone()
        };
        tracing::info!(user_id = %user.id, %session_id, "guest upgraded");
        let subject = subject(Some(&user.id), Some(session_id), client);
        self.audit.record(Event::Upgrade, subject, json!({})).await;
        let idle = self.sessions.lifetimes().idle_timeout_secs;
        let ends_at = (session_created_at + permanent_ttl).min(self.clock.now() + idle);
        // Signing up in place is an authentication, with the password just set.
        let times = TokenTimes {
            auth_time: self.clock.now(),
            session_ends_at: ends_at,
        };
        self.sessions
            .issue(user, session_id.clone(), amr, refresh_token, times)
    }

    /// Changes the password of `user_id` (who must confirm the current one), then ends every
    /// other session of the user.
    #[tracing::instrument(name = "change_password", skip_all)]
    pub async fn change_password(
        &self,
        user_id: &UserId,
        session_id: &SessionId,
        email: Option<&str>,
        current: &SecretString,
        new: SecretString,
        client: &ClientInfo,
    ) -> Result<()> {
        self.checks.attempt(client)?;
        // The same budget as a login to this account: a stolen access token cannot guess the
        // password faster than the login form can.
        let account = match email {
            Some(email) => throttle_account(email, Email::parse(email).ok().as_ref()),
            None => user_id.to_string(),
        };
        let stored = self.store.password_hash(user_id).await?;
        if stored.is_none() {
            // The caller is signed in: saying so tells nobody else anything.
            return Err(Error::Forbidden(
                "this account has no password (it signs in with a passkey, by email or as a \
                 guest): there is none to change",
            ));
        }
        let Admission { slot, ticket } = self.checks.admit_check(&account, client).await?;
        let verified_hash = stored.clone();
        let verified = self
            .checks
            .hasher()
            .verify_in(slot, current, stored)
            .await?;
        let verified_hash = match verified_hash {
            Some(hash) if verified => hash,
            _ => {
                tracing::info!(%user_id, "password change: the current password is wrong");
                let subject = subject(Some(user_id), Some(session_id), client);
                let detail = json!({ "credential": "password", "purpose": "password_change" });
                return Err(self
                    .checks
                    .check_failed(
                        ticket,
                        Event::CredentialCheckFailed,
                        subject,
                        detail,
                        Error::InvalidCredentials,
                    )
                    .await);
            }
        };
        self.checks.check_passed(ticket).await?;
        let context: Vec<&str> = email.into_iter().collect();
        let new_password = Password::parse(new, self.policy, &context)?;
        let hash = self.checks.hasher().hash(new_password.secret()).await?;
        let now = self.clock.now();
        let ended = self
            .store
            .change_password(user_id, &verified_hash, &hash, session_id, now)
            .await?
            // Another change committed since we verified: the current password is not this one.
            .ok_or(Error::InvalidCredentials)?;
        tracing::info!(%user_id, revoked = ended.len(), "password changed");
        let detail = json!({ "revoked": ended });
        let subject = subject(Some(user_id), Some(session_id), client);
        let record = Some((Event::PasswordChanged, subject, detail));
        self.ending
            .finish_ending(&ended, RevokeReason::PasswordChanged, record)
            .await;
        Ok(())
    }
}

/// An audit subject from the request's client.
pub(super) fn subject<'a>(
    user_id: Option<&'a str>,
    session_id: Option<&'a str>,
    client: &'a ClientInfo,
) -> AuditSubject<'a> {
    AuditSubject {
        user_id,
        session_id,
        client,
    }
}

fn new_user(email: Option<String>, is_guest: bool, now: i64) -> User {
    User {
        id: UserId::generate(),
        email,
        is_guest,
        email_verified: false,
        created_at: now,
    }
}
