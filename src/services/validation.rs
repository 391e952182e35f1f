//! Validation: whether what a caller presents stands for something live right now — an access
//! token and its session, a session cookie, a service key — and the public keys that let other
//! backends verify access tokens themselves (JWKS). No database read in the steady state.

use std::sync::Arc;

use secrecy::{ExposeSecret, SecretString};

use crate::clock::Clock;
use crate::credentials::service_keys::{Caller, ServiceKeys};
use crate::credentials::tokens::{AccessClaims, AccessTokens, opaque};
use crate::domain::{SessionId, UserId};
use crate::error::{Error, Result};
use crate::liveness::gate::{SessionGate, Snapshot};
use crate::store::Store;

/// A valid access token whose session has not ended.
pub struct Authenticated {
    pub claims: Arc<AccessClaims>,
}

/// Checks tokens and service keys.
pub struct Validation {
    tokens: Arc<AccessTokens>,
    gate: Arc<SessionGate>,
    clock: Clock,
    /// A session cookie is looked up by its refresh token.
    store: Store,
    service_keys: Arc<ServiceKeys>,
}

impl Validation {
    pub fn new(
        tokens: Arc<AccessTokens>,
        gate: Arc<SessionGate>,
        clock: Clock,
        store: Store,
        service_keys: Arc<ServiceKeys>,
    ) -> Validation {
        Validation {
            tokens,
            gate,
            clock,
            store,
            service_keys,
        }
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

    /// The service key `key` stands for, if it is one.
    pub async fn service_caller(&self, key: &str) -> Option<Caller> {
        self.service_keys.authenticate(key).await
    }

    /// Resolves once `caller`'s key is revoked (on any instance): what ends its event stream.
    pub async fn service_key_revoked(&self, caller: &Caller) {
        self.service_keys.revoked(caller).await
    }

    /// The public keys access tokens are verified with (JWKS).
    pub fn jwks(&self) -> Arc<serde_json::Value> {
        self.tokens.keys().jwks()
    }

    /// The `iss` of every access token.
    pub fn issuer(&self) -> &str {
        self.tokens.issuer()
    }
}
