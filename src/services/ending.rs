//! Ending sessions, the one way it is done: [`Ending::end_sessions`] revokes with a
//! [`RevokeReason`], forgets the sessions in this instance's gate (other instances hear it from
//! the database, see `gate`), and records the audit event. Operations that revoke inside a
//! larger transaction (password change, disable, delete, reuse detection, eviction) finish
//! through the same [`Ending::finish_ending`].

use std::sync::Arc;

use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};

use crate::clock::Clock;
use crate::credentials::tokens::opaque;
use crate::credentials::tokens::{AccessClaims, AccessTokens};
use crate::domain::{ClientInfo, RevokeReason, SessionId, UserId};
use crate::error::{Error, Result};
use crate::liveness::gate::SessionGate;
use crate::observability::audit::{AuditLog, AuditSubject, Event};
use crate::store::{SessionsToEnd, Store};

/// Logout, revocation, and the last step of every other way a session ends.
pub struct Ending {
    store: Store,
    clock: Clock,
    gate: Arc<SessionGate>,
    /// An access token presented for revocation names its session.
    tokens: Arc<AccessTokens>,
    audit: AuditLog,
}

/// Which sessions to end.
#[derive(Debug, Clone, Copy)]
pub enum ToEnd<'a> {
    /// One session; with `owner`, only if it belongs to that user.
    One {
        session_id: &'a SessionId,
        owner: Option<&'a UserId>,
    },
    /// Every live session of a user, except `keep`.
    OfUser {
        user_id: &'a UserId,
        keep: Option<&'a SessionId>,
    },
}

/// The audit event an ending is recorded as. `detail` is given the ids that ended and returns
/// the event's detail, or `None` when there is nothing worth recording.
pub struct EndAudit<'a, F: FnOnce(&[String]) -> Option<Value>> {
    pub event: Event,
    pub subject: AuditSubject<'a>,
    pub detail: F,
}

impl Ending {
    pub fn new(
        store: Store,
        clock: Clock,
        gate: Arc<SessionGate>,
        tokens: Arc<AccessTokens>,
        audit: AuditLog,
    ) -> Ending {
        Ending {
            store,
            clock,
            gate,
            tokens,
            audit,
        }
    }

    /// Ends sessions for `reason`: revokes them, forgets them here (other instances hear it
    /// from the database) and records the audit event. Returns the ids that ended; a session
    /// already ended (or not the owner's) is not among them.
    pub async fn end_sessions<F: FnOnce(&[String]) -> Option<Value>>(
        &self,
        which: ToEnd<'_>,
        reason: RevokeReason,
        audit: EndAudit<'_, F>,
    ) -> Result<Vec<String>> {
        let now = self.clock.now();
        let which = match which {
            ToEnd::One { session_id, owner } => SessionsToEnd::One {
                id: session_id.as_str(),
                owner: owner.map(UserId::as_str),
            },
            ToEnd::OfUser { user_id, keep } => SessionsToEnd::OfUser {
                user_id: user_id.as_str(),
                keep: keep.map(SessionId::as_str),
            },
        };
        let ended = self.store.end_sessions(which, reason, now).await?;
        let detail = (audit.detail)(&ended);
        let record = detail.map(|detail| (audit.event, audit.subject, detail));
        self.finish_ending(&ended, reason, record).await;
        Ok(ended)
    }

    /// The one step after sessions ended in the store (by [`Ending::end_sessions`] or inside
    /// a larger transaction: password change, disable, delete, reuse detection, eviction):
    /// forget them in this instance's gate at once (other instances hear it from the database)
    /// and record the audit event, when there is one worth recording.
    pub async fn finish_ending(
        &self,
        ended: &[String],
        reason: RevokeReason,
        record: Option<(Event, AuditSubject<'_>, Value)>,
    ) {
        self.gate.ended(ended);
        if !ended.is_empty() {
            tracing::debug!(
                count = ended.len(),
                reason = reason.as_str(),
                "sessions ended"
            );
        }
        if let Some((event, subject, detail)) = record {
            self.audit.record(event, subject, detail).await;
        }
    }

    /// Ends one of the caller's own sessions; anyone else's is indistinguishable from missing.
    pub async fn revoke_own_session(
        &self,
        session_id: &SessionId,
        caller: &AccessClaims,
        client: &ClientInfo,
    ) -> Result<()> {
        let which = ToEnd::One {
            session_id,
            owner: Some(&caller.sub),
        };
        let audit = EndAudit {
            event: Event::SessionRevoked,
            subject: AuditSubject {
                user_id: Some(&caller.sub),
                session_id: Some(session_id),
                client,
            },
            detail: |ended: &[String]| {
                (!ended.is_empty()).then(|| json!({ "by_session": caller.sid }))
            },
        };
        let ended = self
            .end_sessions(which, RevokeReason::Revoked, audit)
            .await?;
        if ended.is_empty() {
            return Err(Error::NotFound("no such session"));
        }
        tracing::info!(user_id = %caller.sub, %session_id, "session revoked by its owner");
        Ok(())
    }

    /// RFC 7009: whoever holds a token (refresh or access) may revoke it, which ends its
    /// session. Unknown tokens are ignored, so the answer reveals nothing.
    #[tracing::instrument(name = "revoke", skip_all)]
    pub async fn revoke_token(&self, token: &SecretString, client: &ClientInfo) -> Result<()> {
        let token = token.expose_secret();
        let owner = if opaque::looks_valid(token) {
            self.store
                .session_of_refresh_token(&opaque::hash(token))
                .await?
        } else {
            let claims = self.tokens.verify(token).await.ok();
            claims.map(|claims| (claims.sid.clone(), claims.sub.clone()))
        };
        let Some((session_id, user_id)) = owner else {
            return Ok(());
        };
        let which = ToEnd::One {
            session_id: &session_id,
            owner: None,
        };
        let audit = EndAudit {
            event: Event::TokenRevoked,
            subject: AuditSubject {
                user_id: Some(&user_id),
                session_id: Some(&session_id),
                client,
            },
            detail: |ended: &[String]| (!ended.is_empty()).then(|| json!({})),
        };
        let ended = self
            .end_sessions(which, RevokeReason::TokenRevoked, audit)
            .await?;
        let revoked = !ended.is_empty();
        tracing::info!(%session_id, revoked, "token revoked");
        Ok(())
    }

    /// Ends the caller's session (`Local`), their other sessions, or all of them.
    #[tracing::instrument(name = "logout", skip_all)]
    pub async fn logout(
        &self,
        session_id: &SessionId,
        user_id: &UserId,
        scope: LogoutScope,
        client: &ClientInfo,
    ) -> Result<Vec<String>> {
        let which = match scope {
            LogoutScope::Local => ToEnd::One {
                session_id,
                owner: None,
            },
            LogoutScope::Others => ToEnd::OfUser {
                user_id,
                keep: Some(session_id),
            },
            LogoutScope::Global => ToEnd::OfUser {
                user_id,
                keep: None,
            },
        };
        let audit = EndAudit {
            event: Event::Logout,
            subject: AuditSubject {
                user_id: Some(user_id),
                session_id: Some(session_id),
                client,
            },
            detail: |ended: &[String]| Some(json!({ "scope": scope, "revoked": ended })),
        };
        let ended = self
            .end_sessions(which, RevokeReason::Logout, audit)
            .await?;
        let revoked = ended.len();
        tracing::info!(%user_id, %session_id, ?scope, revoked, "logout");
        Ok(ended)
    }
}

/// Which sessions a logout ends.
#[derive(serde::Deserialize, serde::Serialize, Default, Clone, Copy, PartialEq, Debug)]
#[serde(rename_all = "lowercase")]
pub enum LogoutScope {
    #[default]
    Local,
    Others,
    Global,
}
