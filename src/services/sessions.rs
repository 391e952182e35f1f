//! Sessions: opening one (with its first refresh token, the step every way of signing in
//! ends with) and refreshing it (rotation with reuse detection and a grace window). Checking
//! that a token's session is live is `validation`; ending sessions is `ending`.

use std::sync::Arc;

use secrecy::{ExposeSecret, SecretString};
use serde_json::json;
use tokio::sync::Notify;

use super::ending::Ending;
use crate::clock::Clock;
use crate::config::SessionSettings;
use crate::credentials::tokens::access::Subject as TokenSubject;
use crate::credentials::tokens::{AccessTokens, opaque};
use crate::domain::{ClientInfo, RevokeReason, SessionId, SessionKind, UserId};
use crate::domain::{Session, User};
use crate::error::{Error, Result};
use crate::liveness::gate::SessionGate;
use crate::observability::audit::{AuditSubject, Event};
use crate::observability::metrics::Metrics;
use crate::store::{
    NewSession, OpenSession, Precondition, RefreshOutcome, RotationRequest, SessionCap, Store,
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

/// The times an access token carries from its session.
#[derive(Debug, Clone, Copy)]
pub struct TokenTimes {
    /// The session's last authentication.
    pub auth_time: i64,
    /// When the session ends unless refreshed: no token outlives it.
    pub session_ends_at: i64,
}

impl TokenTimes {
    pub fn of(session: &Session, idle_timeout_secs: i64) -> TokenTimes {
        TokenTimes {
            auth_time: session.auth_time,
            session_ends_at: session.ends_at(idle_timeout_secs),
        }
    }
}

/// Opens, refreshes and lists sessions.
pub struct Sessions {
    store: Store,
    clock: Clock,
    tokens: Arc<AccessTokens>,
    gate: Arc<SessionGate>,
    /// Wakes the event feed's tail when a session was written.
    feed_waker: Arc<Notify>,
    ending: Arc<Ending>,
    metrics: Arc<Metrics>,
    lifetimes: SessionSettings,
    /// `accounts.require_verified_email`: refresh refuses an unverified address.
    require_verified_email: bool,
}

/// What [`Sessions`] is built from.
pub struct SessionsParts {
    pub store: Store,
    pub clock: Clock,
    pub tokens: Arc<AccessTokens>,
    pub gate: Arc<SessionGate>,
    pub feed_waker: Arc<Notify>,
    pub ending: Arc<Ending>,
    pub metrics: Arc<Metrics>,
    pub lifetimes: SessionSettings,
    pub require_verified_email: bool,
}

impl Sessions {
    pub fn new(parts: SessionsParts) -> Sessions {
        let SessionsParts {
            store,
            clock,
            tokens,
            gate,
            feed_waker,
            ending,
            metrics,
            lifetimes,
            require_verified_email,
        } = parts;
        Sessions {
            store,
            clock,
            tokens,
            gate,
            feed_waker,
            ending,
            metrics,
            lifetimes,
            require_verified_email,
        }
    }

    pub fn lifetimes(&self) -> &SessionSettings {
        &self.lifetimes
    }

    /// A session written with its first refresh token, if `precondition` held (`None` if not).
    pub async fn open_session(
        &self,
        precondition: Precondition<'_>,
        user: &User,
        kind: SessionKind<'_>,
        client: &ClientInfo,
    ) -> Result<Option<Issued>> {
        self.open_session_proven(precondition, user, kind, kind.amr(), client)
            .await
    }

    /// [`Sessions::open_session`] for a sign-in that proved more than its kind says (a second
    /// factor, a passkey's user verification): the session's `amr` is `amr`.
    pub async fn open_session_proven(
        &self,
        precondition: Precondition<'_>,
        user: &User,
        kind: SessionKind<'_>,
        amr: Vec<String>,
        client: &ClientInfo,
    ) -> Result<Option<Issued>> {
        let lifetimes = &self.lifetimes;
        let ttl = match kind {
            SessionKind::Guest => lifetimes.guest_ttl_secs,
            SessionKind::Password
            | SessionKind::Email
            | SessionKind::Passkey
            | SessionKind::Bridge(_) => lifetimes.permanent_ttl_secs,
        };
        let provider = match kind {
            SessionKind::Bridge(provider) => Some(provider),
            _ => None,
        };
        let now = self.clock.now();
        let session_id = SessionId::generate();
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
        self.feed_waker.notify_one();
        if !evicted.is_empty() {
            tracing::info!(user_id = %user.id, evicted = evicted.len(), "session cap: evicted");
            let subject = AuditSubject {
                user_id: Some(&user.id),
                session_id: Some(&session_id),
                client,
            };
            let detail = json!({ "evicted": evicted, "max_per_user": lifetimes.max_per_user });
            let record = Some((Event::SessionsEvicted, subject, detail));
            self.ending
                .finish_ending(&evicted, RevokeReason::Evicted, record)
                .await;
        }
        let ends_at = open
            .session
            .expires_at
            .min(now + lifetimes.idle_timeout_secs);
        let times = TokenTimes {
            auth_time: now,
            session_ends_at: ends_at,
        };
        self.issue(user.clone(), session_id, amr, refresh_token, times)
            .map(Some)
    }

    /// Mints an access token for the session and bundles it with its refresh token. The token
    /// expires no later than `session_ends_at` (the session's absolute or idle expiry).
    pub fn issue(
        &self,
        user: User,
        session_id: SessionId,
        amr: Vec<String>,
        refresh_token: SecretString,
        times: TokenTimes,
    ) -> Result<Issued> {
        let now = self.clock.now();
        let (access_token, expires_at) = self.tokens.issue(
            TokenSubject {
                user_id: &user.id,
                session_id: &session_id,
                is_guest: user.is_guest,
                amr,
                email: user.email.as_deref(),
                email_verified: user.email_verified,
                auth_time: times.auth_time,
                session_ends_at: times.session_ends_at,
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

    /// `email_not_verified` when the token's user has an address not yet verified (before the
    /// rotation, so the client keeps a token that works once the address is verified).
    async fn refuse_unverified(&self, presented: &SecretString) -> Result<()> {
        let hash = opaque::hash(presented.expose_secret());
        let Some((_, user_id)) = self.store.session_of_refresh_token(&hash).await? else {
            return Ok(());
        };
        let user = self.store.find_user(&user_id).await?;
        if user.is_some_and(|user| !user.may_sign_in(true)) {
            return Err(Error::EmailNotVerified);
        }
        Ok(())
    }

    /// A user's live sessions, newest first.
    pub async fn list_sessions(&self, user_id: &UserId) -> Result<Vec<Session>> {
        let idle = self.lifetimes.idle_timeout_secs;
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
        if self.require_verified_email {
            self.refuse_unverified(presented).await?;
        }
        let successor = opaque::generate();
        let successor_id = uuid::Uuid::now_v7().to_string();
        let sessions = &self.lifetimes;
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
                let times = TokenTimes::of(&session, sessions.idle_timeout_secs);
                self.issue(user, session.id, session.amr, successor, times)
            }
            RefreshOutcome::Replayed {
                session,
                user,
                sealed,
            } => {
                let same = opaque::unseal_successor(presented, &sealed)
                    .ok_or(Error::InvalidRefreshToken)?;
                self.metrics.refreshes.inc();
                let times = TokenTimes::of(&session, sessions.idle_timeout_secs);
                self.issue(user, session.id, session.amr, same, times)
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
                self.ending
                    .finish_ending(&ended, RevokeReason::RefreshTokenReused, record)
                    .await;
                Err(Error::RefreshTokenReused)
            }
            RefreshOutcome::Unknown | RefreshOutcome::Superseded => Err(Error::InvalidRefreshToken),
            RefreshOutcome::SessionRevoked => Err(Error::SessionRevoked),
            RefreshOutcome::SessionExpired => Err(Error::SessionExpired),
        }
    }
}
