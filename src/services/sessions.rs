//! Sessions: opening one (with its first refresh token), refreshing it (rotation with reuse
//! detection and a grace window), checking that a token's session is live, and ending sessions.
//!
//! Ending is one call, [`Services::end_sessions`]: it revokes with a [`RevokeReason`], forgets
//! the sessions in this instance's gate (other instances hear it from the database, see
//! `gate`), and records the audit event. Operations that revoke inside a larger transaction
//! (password change, disable, delete, reuse detection) finish through the same
//! [`Services::sessions_ended`].

use std::sync::Arc;

use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};

use super::Services;
use crate::audit::{Event, Subject};
use crate::domain::{ClientInfo, RevokeReason, SessionKind};
use crate::error::{Error, Result};
use crate::gate::Snapshot;
use crate::store::{
    NewSession, OpenSession, Precondition, RefreshOutcome, RotationRequest, SessionRow, UserRow,
};
use crate::tokens::AccessClaims;
use crate::tokens::access::Subject as TokenSubject;
use crate::tokens::opaque;

/// A session's tokens, as every token response carries them.
pub struct Issued {
    pub user: UserRow,
    pub session_id: String,
    pub access_token: String,
    pub expires_at: i64,
    pub expires_in: i64,
    pub refresh_token: SecretString,
}

/// A valid access token whose session is live right now, with that session and its user.
pub struct Authenticated {
    pub claims: Arc<AccessClaims>,
    pub snapshot: Arc<Snapshot>,
}

/// Which sessions to end.
#[derive(Debug, Clone, Copy)]
pub enum Ending<'a> {
    /// One session; with `owner`, only if it belongs to that user.
    One {
        session_id: &'a str,
        owner: Option<&'a str>,
    },
    /// Every live session of a user, except `keep`.
    OfUser {
        user_id: &'a str,
        keep: Option<&'a str>,
    },
}

/// The audit event an ending is recorded as. `detail` is given the ids that ended and returns
/// the event's detail, or `None` when there is nothing worth recording.
pub struct EndAudit<'a, F: FnOnce(&[String]) -> Option<Value>> {
    pub event: Event,
    pub subject: Subject<'a>,
    pub detail: F,
}

impl Services {
    /// A session written with its first refresh token, if `precondition` held (`None` if not).
    pub(super) async fn open_session(
        &self,
        precondition: Precondition<'_>,
        user: &UserRow,
        kind: SessionKind<'_>,
        client: &ClientInfo,
    ) -> Result<Option<Issued>> {
        let lifetimes = &self.settings.sessions;
        let ttl = match kind {
            SessionKind::Guest => lifetimes.guest_ttl_secs,
            SessionKind::Password | SessionKind::Bridge(_) => lifetimes.permanent_ttl_secs,
        };
        let provider = match kind {
            SessionKind::Bridge(provider) => Some(provider),
            _ => None,
        };
        let now = self.clock.now();
        let session_id = uuid::Uuid::now_v7().to_string();
        let amr = kind.amr();
        let refresh_token = opaque::generate();
        let open = OpenSession {
            session: NewSession {
                id: &session_id,
                user_id: &user.id,
                kind: kind.as_str(),
                provider,
                amr: &amr,
                user_agent: client.user_agent.as_deref(),
                ip_address: client.ip_address.as_deref(),
                now,
                expires_at: now + ttl,
            },
            refresh_token_id: &uuid::Uuid::now_v7().to_string(),
            refresh_token_hash: &opaque::hash(refresh_token.expose_secret()),
        };
        if !self.store.open_session(precondition, &open).await? {
            return Ok(None);
        }
        // Its session.created event is committed: the feed need not wait for its next poll.
        self.events.waker().notify_one();
        self.issue(user.clone(), session_id, amr, refresh_token)
            .map(Some)
    }

    /// Mints an access token for the session and bundles it with its refresh token.
    pub(super) fn issue(
        &self,
        user: UserRow,
        session_id: String,
        amr: Vec<String>,
        refresh_token: SecretString,
    ) -> Result<Issued> {
        let now = self.clock.now();
        let (access_token, expires_at) = self.tokens.issue(
            TokenSubject {
                user_id: &user.id,
                session_id: &session_id,
                is_guest: user.is_guest,
                amr,
                email: user.email.as_deref(),
            },
            now,
        )?;
        Ok(Issued {
            user,
            session_id,
            access_token,
            expires_at,
            expires_in: expires_at - now,
            refresh_token,
        })
    }

    /// The claims of a valid access token and its live session (`invalid_token` otherwise).
    pub async fn authenticate(&self, token: &str) -> Result<Authenticated> {
        let claims = self.tokens.verify(token).await?;
        let snapshot = self
            .gate
            .live(&claims.sid, &claims.sub, self.clock.now())
            .await?;
        Ok(Authenticated { claims, snapshot })
    }

    /// The claims of an access token whose signature and expiry hold, live session or not.
    pub async fn verify_token(&self, token: &str) -> Result<Arc<AccessClaims>> {
        self.tokens.verify(token).await
    }

    /// Session `sid` of user `sub` if it is live right now (`invalid_token` otherwise).
    pub async fn live_session(&self, sid: &str, sub: &str) -> Result<Arc<Snapshot>> {
        self.gate.live(sid, sub, self.clock.now()).await
    }

    /// The (session id, user id) of a refresh token that is its session's current one, while
    /// that session is live: what a session cookie may act for.
    pub async fn session_of_cookie(
        &self,
        refresh_token: &SecretString,
    ) -> Result<(String, String)> {
        let hash = opaque::hash(refresh_token.expose_secret());
        let (sid, sub) = self
            .store
            .session_of_unspent_refresh_token(&hash)
            .await?
            .ok_or(Error::InvalidToken("the session cookie is not valid"))?;
        self.live_session(&sid, &sub).await?;
        Ok((sid, sub))
    }

    /// A user's live sessions, newest first.
    pub async fn list_sessions(&self, user_id: &str) -> Result<Vec<SessionRow>> {
        let idle = self.settings.sessions.idle_timeout_secs;
        Ok(self
            .store
            .list_live_sessions(user_id, self.clock.now(), idle)
            .await?)
    }

    /// Spends `presented` for a new refresh token and access token.
    pub async fn refresh(&self, presented: &SecretString, client: &ClientInfo) -> Result<Issued> {
        if !opaque::looks_valid(presented.expose_secret()) {
            return Err(Error::InvalidRefreshToken);
        }
        let successor = opaque::generate();
        let successor_id = uuid::Uuid::now_v7().to_string();
        let sessions = &self.settings.sessions;
        let request = RotationRequest {
            presented_hash: &opaque::hash(presented.expose_secret()),
            successor_id: &successor_id,
            successor_hash: &opaque::hash(successor.expose_secret()),
            successor_sealed: &opaque::seal_successor(presented, &successor),
            now: self.clock.now(),
            grace_secs: sessions.refresh_grace_secs,
            idle_timeout_secs: sessions.idle_timeout_secs,
        };
        match self.store.rotate_refresh_token(&request).await? {
            RefreshOutcome::Rotated { session, user } => {
                self.gate.changed(&session.id);
                self.metrics.refreshes.inc();
                self.issue(user, session.id, session.amr, successor)
            }
            RefreshOutcome::Replayed {
                session,
                user,
                sealed,
            } => {
                let same = opaque::unseal_successor(presented, &sealed)
                    .ok_or(Error::InvalidRefreshToken)?;
                self.metrics.refreshes.inc();
                self.issue(user, session.id, session.amr, same)
            }
            RefreshOutcome::Reused {
                session_id,
                user_id,
            } => {
                tracing::warn!(%session_id, "refresh token reuse detected; session revoked");
                self.metrics.reuse_detections.inc();
                let subject = Subject {
                    user_id: Some(&user_id),
                    session_id: Some(&session_id),
                    client,
                };
                let ended = std::slice::from_ref(&session_id);
                self.sessions_ended(ended, Event::RefreshReuseDetected, subject, json!({}))
                    .await;
                Err(Error::RefreshTokenReused)
            }
            RefreshOutcome::Unknown | RefreshOutcome::Superseded => Err(Error::InvalidRefreshToken),
            RefreshOutcome::SessionRevoked => Err(Error::SessionRevoked),
            RefreshOutcome::SessionExpired => Err(Error::SessionExpired),
        }
    }

    /// Ends sessions for `reason`: revokes them, forgets them here (other instances hear it
    /// from the database) and records the audit event. Returns the ids that ended; a session
    /// already ended (or not the owner's) is not among them.
    pub async fn end_sessions<F: FnOnce(&[String]) -> Option<Value>>(
        &self,
        which: Ending<'_>,
        reason: RevokeReason,
        audit: EndAudit<'_, F>,
    ) -> Result<Vec<String>> {
        let now = self.clock.now();
        let ended = match which {
            Ending::One { session_id, owner } => {
                let revoked = self
                    .store
                    .revoke_session(session_id, owner, reason, now)
                    .await?;
                revoked
                    .then(|| session_id.to_string())
                    .into_iter()
                    .collect()
            }
            Ending::OfUser { user_id, keep } => {
                self.store
                    .revoke_user_sessions(user_id, keep, reason, now)
                    .await?
            }
        };
        self.gate.ended(&ended);
        if let Some(detail) = (audit.detail)(&ended) {
            self.audit(audit.event, audit.subject, detail).await;
        }
        Ok(ended)
    }

    /// Sessions that ended through this instance (revoked in the store already): forget them
    /// here at once and record why.
    pub(super) async fn sessions_ended(
        &self,
        ended: &[String],
        event: Event,
        subject: Subject<'_>,
        detail: Value,
    ) {
        self.gate.ended(ended);
        self.audit(event, subject, detail).await;
    }
}

impl Services {
    /// Ends one of the caller's own sessions; anyone else's is indistinguishable from missing.
    pub async fn revoke_own_session(
        &self,
        session_id: &str,
        caller: &AccessClaims,
        client: &ClientInfo,
    ) -> Result<()> {
        let which = Ending::One {
            session_id,
            owner: Some(&caller.sub),
        };
        let audit = EndAudit {
            event: Event::SessionRevoked,
            subject: Subject {
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
        let which = Ending::One {
            session_id: &session_id,
            owner: None,
        };
        let audit = EndAudit {
            event: Event::TokenRevoked,
            subject: Subject {
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
    pub async fn logout(
        &self,
        session_id: &str,
        user_id: &str,
        scope: LogoutScope,
        client: &ClientInfo,
    ) -> Result<Vec<String>> {
        let which = match scope {
            LogoutScope::Local => Ending::One {
                session_id,
                owner: None,
            },
            LogoutScope::Others => Ending::OfUser {
                user_id,
                keep: Some(session_id),
            },
            LogoutScope::Global => Ending::OfUser {
                user_id,
                keep: None,
            },
        };
        let audit = EndAudit {
            event: Event::Logout,
            subject: Subject {
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
