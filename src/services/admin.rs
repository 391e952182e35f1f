//! What a backend holding an `admin` service key (or the operator, from the CLI as the caller
//! "cli") may do to a user: create one, list and end their sessions, disable, enable or delete
//! them, clear their login throttle, and read the audit trail. Every write is recorded with the
//! calling service's name, and ends sessions the one way (`ending`), so the CLI announces and
//! audits exactly as the API does.

use std::sync::Arc;

use secrecy::SecretString;
use serde_json::{Value, json};

use super::ending::{EndAudit, Ending, ToEnd};
use super::sessions::Sessions;
use crate::clock::Clock;
use crate::credentials::passwords::PasswordHasher;
use crate::domain::{ClientInfo, Email, Password, PasswordPolicy, RevokeReason, SessionId, UserId};
use crate::domain::{Session, User};
use crate::error::{Error, Result};
use crate::limits::throttle::LoginThrottle;
use crate::observability::audit::{AuditLog, AuditSubject, Event};
use crate::store::{AuditEntry, NewUser, Store};

/// A user's life as an operator manages it.
pub struct Admin {
    store: Store,
    clock: Clock,
    throttle: Arc<LoginThrottle>,
    sessions: Arc<Sessions>,
    ending: Arc<Ending>,
    hasher: PasswordHasher,
    policy: PasswordPolicy,
    audit: AuditLog,
}

/// What [`Admin`] is built from.
pub struct AdminParts {
    pub store: Store,
    pub clock: Clock,
    pub throttle: Arc<LoginThrottle>,
    pub sessions: Arc<Sessions>,
    pub ending: Arc<Ending>,
    pub hasher: PasswordHasher,
    pub policy: PasswordPolicy,
    pub audit: AuditLog,
}

/// The calling service and its client, named in the audit event of every admin write.
pub struct AdminCaller<'a> {
    pub service: &'a str,
    pub client: &'a ClientInfo,
}

impl AdminCaller<'_> {
    fn subject<'a>(&'a self, user_id: &'a str) -> AuditSubject<'a> {
        AuditSubject {
            user_id: Some(user_id),
            session_id: None,
            client: self.client,
        }
    }

    fn detail(&self, mut detail: Value) -> Value {
        detail["service"] = json!(self.service);
        detail
    }
}

impl Admin {
    pub fn new(parts: AdminParts) -> Admin {
        let AdminParts {
            store,
            clock,
            throttle,
            sessions,
            ending,
            hasher,
            policy,
            audit,
        } = parts;
        Admin {
            store,
            clock,
            throttle,
            sessions,
            ending,
            hasher,
            policy,
            audit,
        }
    }

    /// A user with a password and no session (they sign in with it). The password passes the
    /// same rules as signup; a taken email is `email_taken`.
    pub async fn create_user(
        &self,
        email: &Email,
        password: SecretString,
        by: &AdminCaller<'_>,
    ) -> Result<User> {
        let password = Password::parse(password, self.policy, &[email.as_str()])?;
        let hash = self.hasher.hash(password.secret()).await?;
        let user = User {
            id: UserId::generate(),
            email: Some(email.as_str().to_string()),
            is_guest: false,
            email_verified: false,
            created_at: self.clock.now(),
        };
        let new_user = NewUser {
            id: &user.id,
            email: user.email.as_deref(),
            password_hash: Some(&hash),
            is_guest: false,
            email_verified: false,
            now: user.created_at,
        };
        if !self.store.create_user(&new_user).await? {
            return Err(Error::EmailTaken);
        }
        self.admin_done(by, Event::AdminCreatedUser, &user.id, json!({}))
            .await;
        Ok(user)
    }

    async fn existing_user(&self, user_id: &UserId) -> Result<User> {
        self.store
            .find_user(user_id)
            .await?
            .ok_or(Error::NotFound("no such user"))
    }

    /// How every admin write ends: the audit event, naming the calling service.
    async fn admin_done(
        &self,
        by: &AdminCaller<'_>,
        event: Event,
        user_id: &UserId,
        detail: Value,
    ) {
        self.audit
            .record(event, by.subject(user_id), by.detail(detail))
            .await;
    }

    pub async fn user_sessions(&self, user_id: &UserId) -> Result<Vec<Session>> {
        self.existing_user(user_id).await?;
        self.sessions.list_sessions(user_id).await
    }

    /// Ends every session of the user (they may sign in again); returns the ids that ended.
    pub async fn revoke_user_sessions(
        &self,
        user_id: &UserId,
        by: &AdminCaller<'_>,
    ) -> Result<Vec<String>> {
        self.existing_user(user_id).await?;
        let audit = EndAudit {
            event: Event::AdminRevokedSessions,
            subject: by.subject(user_id),
            detail: |ended: &[String]| Some(by.detail(json!({ "revoked": ended.len() }))),
        };
        let which = ToEnd::OfUser {
            user_id,
            keep: None,
        };
        self.ending
            .end_sessions(which, RevokeReason::Admin, audit)
            .await
    }

    /// Ends one session, whoever's it is (`not_found` unless it was live).
    pub async fn revoke_session(&self, session_id: &SessionId, by: &AdminCaller<'_>) -> Result<()> {
        let session = self.store.find_session(session_id).await?;
        let Some(user_id) = session.map(|session| session.user_id) else {
            return Err(Error::NotFound("no such session"));
        };
        let audit = EndAudit {
            event: Event::AdminRevokedSessions,
            subject: AuditSubject {
                user_id: Some(&user_id),
                session_id: Some(session_id),
                client: by.client,
            },
            detail: |ended: &[String]| Some(by.detail(json!({ "revoked": ended.len() }))),
        };
        let which = ToEnd::One {
            session_id,
            owner: None,
        };
        let ended = self
            .ending
            .end_sessions(which, RevokeReason::Admin, audit)
            .await?;
        if ended.is_empty() {
            return Err(Error::NotFound("no such session"));
        }
        Ok(())
    }

    /// Forgets the user's failed logins, from every address, so the owner (or a helpdesk) can
    /// get back in at once.
    pub async fn clear_throttle(&self, user_id: &UserId, by: &AdminCaller<'_>) -> Result<()> {
        let user = self.existing_user(user_id).await?;
        let cleared = match &user.email {
            Some(email) => self.throttle.clear(email).await?,
            None => 0,
        };
        let detail = json!({ "cleared": cleared });
        self.admin_done(by, Event::AdminClearedThrottle, user_id, detail)
            .await;
        Ok(())
    }

    /// Deletes the user with their sessions; returns the ids of the sessions that were live.
    pub async fn delete_user(&self, user_id: &UserId, by: &AdminCaller<'_>) -> Result<Vec<String>> {
        let ended = self.store.delete_user(user_id).await?;
        let event = Event::AdminDeletedUser;
        let reason = RevokeReason::UserDeleted;
        self.admin_ended(by, user_id, ended, (event, reason), "sessions")
            .await
    }

    /// The user can no longer log in, refresh or bridge, and every session of theirs ends now,
    /// on every instance.
    pub async fn disable_user(
        &self,
        user_id: &UserId,
        by: &AdminCaller<'_>,
    ) -> Result<Vec<String>> {
        let ended = self.store.disable_user(user_id, self.clock.now()).await?;
        let event = Event::AdminDisabledUser;
        let reason = RevokeReason::UserDisabled;
        self.admin_ended(by, user_id, ended, (event, reason), "revoked")
            .await
    }

    /// How an admin write that ended the user's sessions in its own transaction finishes:
    /// `None` (no such user) is 404; otherwise the sessions are forgotten here and the event
    /// records how many ended, under `count_key`.
    async fn admin_ended(
        &self,
        by: &AdminCaller<'_>,
        user_id: &UserId,
        ended: Option<Vec<String>>,
        (event, reason): (Event, RevokeReason),
        count_key: &str,
    ) -> Result<Vec<String>> {
        let ended = ended.ok_or(Error::NotFound("no such user"))?;
        let detail = by.detail(json!({ count_key: ended.len() }));
        let record = Some((event, by.subject(user_id), detail));
        self.ending.finish_ending(&ended, reason, record).await;
        Ok(ended)
    }

    /// The user may log in again.
    pub async fn enable_user(&self, user_id: &UserId, by: &AdminCaller<'_>) -> Result<()> {
        if !self.store.enable_user(user_id, self.clock.now()).await? {
            return Err(Error::NotFound("no such user"));
        }
        self.admin_done(by, Event::AdminEnabledUser, user_id, json!({}))
            .await;
        Ok(())
    }

    /// The newest `limit` audit events, of one user or of everyone.
    pub async fn audit_events(&self, user_id: Option<&str>, limit: i64) -> Result<Vec<AuditEntry>> {
        Ok(self.store.audit_events(user_id, limit).await?)
    }
}
