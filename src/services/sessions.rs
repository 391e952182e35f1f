//! Sessions: opening one (with its first refresh token), refreshing it (rotation with reuse
//! detection and a grace window), and checking that a token's session is live. Ending them is
//! `ending`.

use std::sync::Arc;

use secrecy::{ExposeSecret, SecretString};
use serde_json::json;

use super::Services;
use crate::credentials::tokens::AccessClaims;
use crate::credentials::tokens::access::Subject as TokenSubject;
use crate::credentials::tokens::opaque;
use crate::domain::{ClientInfo, RevokeReason, SessionId, SessionKind, UserId};
use crate::domain::{Session, User};
use crate::error::{Error, Result};
use crate::liveness::gate::Snapshot;
use crate::observability::audit::{AuditSubject, Event};
use crate::store::{
    NewSession, OpenSession, Precondition, RefreshOutcome, RotationRequest, SessionCap,
};

/// A session's tokens, as every token response carries them.
pub struct Issued {
    pub user: User,
    pub session_id: SessionId,
    pub access_token: String,
    pub expires_at: i64,
    pub expires_in: i64,
    pub refresh_token: SecretString,
}

/// A valid access token whose session has not ended.
pub struct Authenticated {
    pub claims: Arc<AccessClaims>,
}

impl Services {
    /// A session written with its first refresh token, if `precondition` held (`None` if not).
    pub(super) async fn open_session(
        &self,
        precondition: Precondition<'_>,
        user: &User,
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
        let session_id = SessionId::generate();
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
            cap: SessionCap {
                max_per_user: lifetimes.max_per_user,
                idle_timeout_secs: lifetimes.idle_timeout_secs,
            },
        };
        let Some(evicted) = self.store.open_session(precondition, &open).await? else {
            return Ok(None);
        };
        // Its session.created event is committed: the feed need not wait for its next poll.
        self.events.waker().notify_one();
        if !evicted.is_empty() {
            tracing::info!(user_id = %user.id, evicted = evicted.len(), "session cap: evicted");
            let subject = AuditSubject {
                user_id: Some(&user.id),
                session_id: Some(&session_id),
                client,
            };
            let detail = json!({ "evicted": evicted, "max_per_user": lifetimes.max_per_user });
            let record = Some((Event::SessionsEvicted, subject, detail));
            self.finish_ending(&evicted, RevokeReason::Evicted, record)
                .await;
        }
        let ends_at = open
            .session
            .expires_at
            .min(now + lifetimes.idle_timeout_secs);
        self.issue(user.clone(), session_id, amr, refresh_token, ends_at)
            .map(Some)
    }

    /// Mints an access token for the session and bundles it with its refresh token. The token
    /// expires no later than `session_ends_at` (the session's absolute or idle expiry).
    pub(super) fn issue(
        &self,
        user: User,
        session_id: SessionId,
        amr: Vec<String>,
        refresh_token: SecretString,
        session_ends_at: i64,
    ) -> Result<Issued> {
        let now = self.clock.now();
        let (access_token, expires_at) = self.tokens.issue(
            TokenSubject {
                user_id: &user.id,
                session_id: &session_id,
                is_guest: user.is_guest,
                amr,
                email: user.email.as_deref(),
                session_ends_at,
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

    /// The claims of a valid access token whose session has not ended (`invalid_token`
    /// otherwise). No database read in the steady state (see `gate::RecentlyEnded`).
    pub async fn authenticate(&self, token: &str) -> Result<Authenticated> {
        let claims = self.tokens.verify(token).await?;
        self.token_session_live(&claims).await?;
        Ok(Authenticated { claims })
    }

    /// For verified claims: `Ok` if their session has not ended (`invalid_token` if it has).
    pub async fn token_session_live(&self, claims: &AccessClaims) -> Result<()> {
        self.gate
            .token_session_live(&claims.sid, &claims.sub, self.clock.now())
            .await
    }

    /// The claims of an access token whose signature and expiry hold, live session or not.
    pub async fn verify_token(&self, token: &str) -> Result<Arc<AccessClaims>> {
        self.tokens.verify(token).await
    }

    /// Session `sid` of user `sub` if it is live right now (`invalid_token` otherwise).
    pub async fn live_session(&self, sid: &SessionId, sub: &UserId) -> Result<Arc<Snapshot>> {
        self.gate.live(sid, sub, self.clock.now()).await
    }

    /// The (session id, user id) of a refresh token that is its session's current one, while
    /// that session is live: what a session cookie may act for.
    pub async fn session_of_cookie(
        &self,
        refresh_token: &SecretString,
    ) -> Result<(SessionId, UserId)> {
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
    pub async fn list_sessions(&self, user_id: &UserId) -> Result<Vec<Session>> {
        let idle = self.settings.sessions.idle_timeout_secs;
        Ok(self
            .store
            .list_live_sessions(user_id, self.clock.now(), idle)
            .await?)
    }

    /// Spends `presented` for a new refresh token and access token.
    #[tracing::instrument(name = "refresh", skip_all)]
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
                let ends_at = session.ends_at(sessions.idle_timeout_secs);
                self.issue(user, session.id, session.amr, successor, ends_at)
            }
            RefreshOutcome::Replayed {
                session,
                user,
                sealed,
            } => {
                let same = opaque::unseal_successor(presented, &sealed)
                    .ok_or(Error::InvalidRefreshToken)?;
                self.metrics.refreshes.inc();
                let ends_at = session.ends_at(sessions.idle_timeout_secs);
                self.issue(user, session.id, session.amr, same, ends_at)
            }
            RefreshOutcome::Reused {
                session_id,
                user_id,
            } => {
                tracing::warn!(%session_id, "refresh token reuse detected; session revoked");
                self.metrics.reuse_detections.inc();
                let subject = AuditSubject {
                    user_id: Some(&user_id),
                    session_id: Some(&session_id),
                    client,
                };
                let ended = [session_id.to_string()];
                let record = Some((Event::RefreshReuseDetected, subject, json!({})));
                self.finish_ending(&ended, RevokeReason::RefreshTokenReused, record)
                    .await;
                Err(Error::RefreshTokenReused)
            }
            RefreshOutcome::Unknown | RefreshOutcome::Superseded => Err(Error::InvalidRefreshToken),
            RefreshOutcome::SessionRevoked => Err(Error::SessionRevoked),
            RefreshOutcome::SessionExpired => Err(Error::SessionExpired),
        }
    }
}
