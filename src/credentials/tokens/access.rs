//! Access tokens: short-lived JWTs (`typ: at+jwt`, RFC 9068) signed by the key ring's active key.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use jsonwebtoken::dangerous::insecure_decode_claims;
use jsonwebtoken::{Header, Validation, decode, decode_header, encode};
use quick_cache::sync::Cache;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::KeyRing;
use super::sealing::KeyEncryption;
use crate::clock::Clock;
use crate::config::Settings;
use crate::domain::{SessionId, UserId, assurance};
use crate::error::Error;
use crate::store::Store;

pub const TOKEN_TYPE: &str = "at+jwt";

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AccessClaims {
    pub iss: String,
    pub sub: UserId,
    pub aud: String,
    pub iat: i64,
    pub exp: i64,
    pub jti: String,
    pub sid: SessionId,
    pub is_guest: bool,
    pub amr: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// Whether `email` was verified (present with `email`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email_verified: Option<bool>,
    /// The last authentication in the session (Unix seconds, OpenID Connect's `auth_time`):
    /// what "fresh" is judged by. Tokens minted before it existed count from their `iat`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_time: Option<i64>,
    /// The assurance level of that authentication (`"1"` or `"2"`, from `amr`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acr: Option<String>,
    /// Never set by us; a token carrying one is refused before it (RFC 7519 §4.1.5).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<i64>,
}

impl AccessClaims {
    /// When the session last authenticated.
    pub fn auth_time(&self) -> i64 {
        self.auth_time.unwrap_or(self.iat)
    }

    /// The assurance level (tokens minted before `acr` existed: judged from their `amr`).
    pub fn acr(&self) -> String {
        self.acr
            .clone()
            .unwrap_or_else(|| assurance::acr(&self.amr).to_string())
    }
}

/// What an access token is minted for.
pub struct Subject<'a> {
    pub user_id: &'a str,
    pub session_id: &'a str,
    pub is_guest: bool,
    pub amr: Vec<String>,
    pub email: Option<&'a str>,
    pub email_verified: bool,
    /// The session's last authentication.
    pub auth_time: i64,
    /// When the session ends unless refreshed (the earlier of its absolute and idle expiry):
    /// no token outlives it, which is what lets validation skip the session's own row.
    pub session_ends_at: i64,
}

pub struct AccessTokens {
    keys: Arc<KeyRing>,
    clock: Clock,
    issuer: String,
    audience: String,
    ttl_secs: i64,
    /// Tokens whose signature and claims already checked out, as the SHA-256 digest of the
    /// whole token and its `exp`: a few dozen bytes each, so every token of a million sessions
    /// fits. A hit re-reads the claims from the token itself (equal digests, equal bytes) and
    /// re-checks only the expiry; the session gate still decides liveness. Emptied when a
    /// signing key stops verifying (the key ring's epoch moves).
    verified: Cache<[u8; 32], i64>,
    /// The key ring's epoch the cache was last emptied for.
    verified_epoch: AtomicU64,
}

impl AccessTokens {
    pub fn new(
        keys: Arc<KeyRing>,
        clock: Clock,
        issuer: String,
        audience: String,
        ttl_secs: i64,
        cache_entries: usize,
    ) -> Self {
        AccessTokens {
            keys,
            clock,
            issuer,
            audience,
            ttl_secs,
            verified: Cache::new(cache_entries.max(16)),
            verified_epoch: AtomicU64::new(0),
        }
    }

    /// The access tokens `settings` configure: their key ring loaded from `store` (the first
    /// key created if there is none, private parts sealed under the configured key-encryption
    /// key), remembering up to `cache_entries` verified tokens.
    pub async fn load(
        store: Store,
        clock: Clock,
        settings: &Settings,
        cache_entries: usize,
    ) -> anyhow::Result<AccessTokens> {
        let sealing = Arc::new(KeyEncryption::from_settings(&settings.keys)?);
        let ttl = settings.tokens.access_ttl_secs;
        let keys = Arc::new(KeyRing::load(store, clock.clone(), ttl, sealing).await?);
        Ok(AccessTokens::new(
            keys,
            clock,
            settings.tokens.issuer.clone(),
            settings.tokens.audience.clone(),
            ttl,
            cache_entries,
        ))
    }

    pub fn keys(&self) -> &Arc<KeyRing> {
        &self.keys
    }

    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    pub fn ttl_secs(&self) -> i64 {
        self.ttl_secs
    }

    /// Signs a token for `subject`; returns it with its expiry (Unix seconds).
    pub fn issue(&self, subject: Subject<'_>, now: i64) -> anyhow::Result<(String, i64)> {
        let signer = self.keys.signer();
        let exp = (now + self.ttl_secs).min(subject.session_ends_at);
        let claims = AccessClaims {
            iss: self.issuer.clone(),
            sub: UserId::trusted(subject.user_id.to_string()),
            aud: self.audience.clone(),
            iat: now,
            exp,
            jti: uuid::Uuid::now_v7().to_string(),
            sid: SessionId::trusted(subject.session_id.to_string()),
            is_guest: subject.is_guest,
            acr: Some(assurance::acr(&subject.amr).to_string()),
            amr: subject.amr,
            email: subject.email.map(str::to_string),
            email_verified: subject.email.map(|_| subject.email_verified),
            auth_time: Some(subject.auth_time),
            nbf: None,
        };
        let mut header = Header::new(signer.algorithm);
        header.typ = Some(TOKEN_TYPE.into());
        header.kid = Some(signer.kid.clone());
        let token = encode(&header, &claims, &signer.key)?;
        Ok((token, exp))
    }

    /// Checks signature, algorithm, type, issuer, audience and expiry. Says nothing about
    /// whether the session is still live: that is the session gate's job.
    pub async fn verify(&self, token: &str) -> Result<Arc<AccessClaims>, Error> {
        let epoch = self.keys.epoch();
        if self.verified_epoch.load(Ordering::SeqCst) != epoch {
            // A key stopped verifying: forget every token verified before.
            self.verified_epoch.store(epoch, Ordering::SeqCst);
            self.verified.clear();
        }
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        if let Some(exp) = self.verified.get(&digest) {
            if exp <= self.clock.now() {
                return Err(Error::InvalidToken("the access token has expired"));
            }
            // These exact bytes verified before: their claims are the verified claims.
            if let Ok(claims) = insecure_decode_claims::<AccessClaims>(token) {
                return Ok(Arc::new(claims));
            }
        }
        let claims = Arc::new(self.verify_signed(token).await?);
        // Verified with keys from before a drop: answer this once, but do not remember it.
        if self.keys.epoch() == epoch {
            self.verified.insert(digest, claims.exp);
            if self.keys.epoch() != epoch {
                self.verified.remove(&digest);
            }
        }
        Ok(claims)
    }

    async fn verify_signed(&self, token: &str) -> Result<AccessClaims, Error> {
        let invalid = || Error::InvalidToken("the access token is invalid");
        let header = decode_header(token).map_err(|_| invalid())?;
        if header.typ.as_deref() != Some(TOKEN_TYPE) {
            return Err(invalid());
        }
        let kid = header.kid.ok_or_else(invalid)?;
        let (algorithm, key) = self.keys.verifier(&kid).await.ok_or_else(invalid)?;
        if header.alg != algorithm {
            return Err(invalid());
        }
        let mut validation = Validation::new(algorithm);
        // Time is checked below against the service's clock, not the library's.
        validation.validate_exp = false;
        validation.set_issuer(&[&self.issuer]);
        validation.set_audience(&[&self.audience]);
        validation.set_required_spec_claims(&["exp", "iat", "iss", "aud", "sub"]);
        let claims = decode::<AccessClaims>(token, &key, &validation)
            .map(|data| data.claims)
            .map_err(|_| invalid())?;
        let now = self.clock.now();
        if claims.exp <= now {
            return Err(Error::InvalidToken("the access token has expired"));
        }
        // RFC 7519 §4.1.5: a token is not accepted before its `nbf`.
        if claims.nbf.is_some_and(|nbf| nbf > now) {
            return Err(invalid());
        }
        Ok(claims)
    }
}
