//! What a backend holding an `admin` service key may do to a user: list and end their
//! sessions, disable, enable or delete them, clear their login throttle, and read the audit
//! trail. Every write is recorded with the calling service's name.

use serde_json::{Value, json};

use super::Services;
use super::ending::{EndAudit, Ending};
use crate::domain::{ClientInfo, RevokeReason, UserId};
use crate::domain::{Session, User};
use crate::error::{Error, Result};
use crate::observability::audit::{AuditSubject, Event};
use crate::store::AuditEntry;

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

impl Services {
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
        self.audit(event, by.subject(user_id), by.detail(detail))
            .await;
    }

    pub async fn user_sessions(&self, user_id: &UserId) -> Result<Vec<Session>> {
        self.existing_user(user_id).await?;
        self.list_sessions(user_id).await
    }

    pub async fn revoke_user_sessions(&self, user_id: &UserId, by: &AdminCaller<'_>) -> Result<()> {
        self.existing_user(user_id).await?;
        let audit = EndAudit {
            event: Event::AdminRevokedSessions,
            subject: by.subject(user_id),
            detail: |ended: &[String]| Some(by.detail(json!({ "revoked": ended.len() }))),
        };
        let which = Ending::OfUser {
            user_id,
            keep: None,
        };
        self.end_sessions(which, RevokeReason::Admin, audit).await?;
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

    pub async fn delete_user(&self, user_id: &UserId, by: &AdminCaller<'_>) -> Result<()> {
        let ended = self.store.delete_user(user_id).await?;
        let event = Event::AdminDeletedUser;
        let reason = RevokeReason::UserDeleted;
        self.admin_ended(by, user_id, ended, (event, reason), "sessions")
            .await
    }

    /// The user can no longer log in, refresh or bridge, and every session of theirs ends now,
    /// on every instance.
    pub async fn disable_user(&self, user_id: &UserId, by: &AdminCaller<'_>) -> Result<()> {
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
    ) -> Result<()> {
        let ended = ended.ok_or(Error::NotFound("no such user"))?;
        let detail = by.detail(json!({ count_key: ended.len() }));
        let record = Some((event, by.subject(user_id), detail));
        self.finish_ending(&ended, reason, record).await;
        Ok(())
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
