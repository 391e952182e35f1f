//! The session bridge: a token signed by a third-party issuer (Supabase, Firebase, Auth0,
//! Clerk, Cognito…) is verified against that provider's configuration and exchanged for a
//! local session. Verification trusts nothing in the token that configuration did not allow:
//! the algorithm must be allow-listed and match the key type (an HS256 token is refused by a
//! JWKS provider and the reverse), keys come only from the configured secret or `jwks_url`
//! (`jku`, `x5u` and embedded `jwk` headers are ignored), `iss` is compared exactly, `aud`,
//! `exp` and `sub` are required, `nbf` and `iat` are honoured with a small leeway, all judged by
//! the injected clock.

pub mod jwks;

use std::collections::HashMap;
use std::time::Duration;

use anyhow::{Context, bail, ensure};
use jsonwebtoken::jwk::{KeyOperations, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use secrecy::ExposeSecret;
use serde::Deserialize;

use crate::clock::Clock;
use crate::config::{BridgeSettings, ProviderSettings};

use self::jwks::{FetchLimits, JwksError, RemoteJwks};
use crate::error::Error;

const MAX_LEEWAY_SECS: u64 = 60;

enum Keys {
    Secret(DecodingKey),
    Remote(RemoteJwks),
}

struct Provider {
    name: String,
    issuer: String,
    audience: Vec<String>,
    algorithms: Vec<Algorithm>,
    leeway_secs: u64,
    trust_email: bool,
    keys: Keys,
    clock: Clock,
}

/// What a verified third-party token tells us.
#[derive(Debug, Clone)]
pub struct VerifiedIdentity {
    pub provider: String,
    pub issuer: String,
    pub subject: String,
    pub email: Option<String>,
    /// The issuer's `email_verified` claim: what the local user's `email_verified` follows.
    pub email_verified: bool,
}

#[derive(Deserialize)]
struct ThirdPartyClaims {
    sub: Option<String>,
    exp: i64,
    nbf: Option<i64>,
    iat: Option<i64>,
    #[serde(default)]
    email: Option<String>,
    #[serde(default)]
    email_verified: Option<bool>,
}

pub struct Bridge {
    providers: HashMap<String, Provider>,
}

fn is_symmetric(alg: Algorithm) -> bool {
    matches!(alg, Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512)
}

impl Bridge {
    pub fn new(settings: &BridgeSettings, clock: &Clock) -> anyhow::Result<Bridge> {
        let http = reqwest::Client::builder()
            // A redirect could lead from https to http or elsewhere: keys come from the URL
            // as configured, or not at all.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .context("Failed to build the JWKS HTTP client")?;
        ensure!(
            settings.jwks_min_refetch_secs <= settings.jwks_max_ttl_secs,
            "bridge.jwks_min_refetch_secs must not exceed bridge.jwks_max_ttl_secs"
        );
        ensure!(
            settings.jwks_max_bytes > 0 && settings.jwks_timeout_ms > 0,
            "bridge.jwks_max_bytes and bridge.jwks_timeout_ms must be positive"
        );
        let limits = FetchLimits {
            timeout: Duration::from_millis(settings.jwks_timeout_ms),
            max_bytes: settings.jwks_max_bytes,
            min_refetch: Duration::from_secs(settings.jwks_min_refetch_secs),
            default_ttl: Duration::from_secs(settings.jwks_default_ttl_secs),
            max_ttl: Duration::from_secs(settings.jwks_max_ttl_secs),
        };
        let mut providers = HashMap::new();
        for p in &settings.providers {
            let provider = Provider::new(p, &http, &limits, clock)
                .with_context(|| format!("bridge provider {}", p.name))?;
            ensure!(
                providers.insert(p.name.clone(), provider).is_none(),
                "bridge provider {} is configured twice",
                p.name
            );
        }
        Ok(Bridge { providers })
    }

    /// Verifies `token` for `provider_name`; never decodes a payload before its signature.
    pub async fn verify(
        &self,
        provider_name: &str,
        token: &str,
    ) -> Result<VerifiedIdentity, Error> {
        let provider = self
            .providers
            .get(provider_name)
            .ok_or(Error::UnknownProvider)?;
        provider.verify(token).await
    }
}

impl Provider {
    fn new(
        p: &ProviderSettings,
        http: &reqwest::Client,
        limits: &FetchLimits,
        clock: &Clock,
    ) -> anyhow::Result<Provider> {
        ensure!(!p.issuer.is_empty(), "issuer is required");
        ensure!(!p.audience.is_empty(), "audience is required");
        ensure!(!p.algorithms.is_empty(), "algorithms are required");
        ensure!(
            p.leeway_secs <= MAX_LEEWAY_SECS,
            "leeway_secs must be at most 60"
        );
        let keys = match (&p.secret, &p.jwks_url) {
            (Some(secret), None) => {
                ensure!(
                    p.algorithms.iter().all(|a| is_symmetric(*a)),
                    "a secret provider allows HS256/HS384/HS512 only"
                );
                Keys::Secret(DecodingKey::from_secret(secret.expose_secret().as_bytes()))
            }
            (None, Some(url)) => {
                ensure!(
                    p.algorithms.iter().all(|a| !is_symmetric(*a)),
                    "a jwks_url provider allows asymmetric algorithms only"
                );
                ensure!(
                    url.starts_with("https://") || url.starts_with("http://"),
                    "jwks_url must be http(s)"
                );
                Keys::Remote(RemoteJwks::new(
                    url.clone(),
                    http.clone(),
                    limits.clone(),
                    clock.clone(),
                ))
            }
            _ => bail!("set exactly one of secret or jwks_url"),
        };
        Ok(Provider {
            name: p.name.clone(),
            issuer: p.issuer.clone(),
            audience: p.audience.clone(),
            algorithms: p.algorithms.clone(),
            leeway_secs: p.leeway_secs,
            trust_email: p.trust_email,
            keys,
            clock: clock.clone(),
        })
    }

    async fn verify(&self, token: &str) -> Result<VerifiedIdentity, Error> {
        let invalid = || Error::InvalidBridgeToken;
        let header = jsonwebtoken::decode_header(token).map_err(|_| invalid())?;
        if !self.algorithms.contains(&header.alg) {
            return Err(invalid());
        }
        let key = match &self.keys {
            Keys::Secret(key) => key.clone(),
            Keys::Remote(jwks) => {
                let kid = header.kid.as_deref().ok_or_else(invalid)?;
                let jwk = jwks.key(kid).await.map_err(|JwksError::Unavailable(why)| {
                    Error::Unavailable(anyhow::anyhow!("bridge provider {}: {why}", self.name))
                })?;
                let jwk = jwk.ok_or_else(invalid)?;
                // Only keys published for signatures verify signatures.
                if jwk
                    .common
                    .public_key_use
                    .as_ref()
                    .is_some_and(|u| *u != PublicKeyUse::Signature)
                    || jwk
                        .common
                        .key_operations
                        .as_ref()
                        .is_some_and(|ops| !ops.contains(&KeyOperations::Verify))
                {
                    return Err(invalid());
                }
                // A key published for one algorithm is not used with another.
                if let Some(alg) = jwk.common.key_algorithm
                    && alg.to_string() != format!("{:?}", header.alg)
                {
                    return Err(invalid());
                }
                DecodingKey::from_jwk(&jwk).map_err(|_| invalid())?
            }
        };
        let mut validation = Validation::new(header.alg);
        // Times are judged below by the injected clock, not the library's reading of the system
        // clock; `exp` must still be present.
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.set_issuer(&[&self.issuer]);
        validation.set_audience(&self.audience);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        let claims = jsonwebtoken::decode::<ThirdPartyClaims>(token, &key, &validation)
            .map_err(|_| invalid())?
            .claims;
        let now = self.clock.now();
        let leeway = i64::try_from(self.leeway_secs).unwrap_or(0);
        let expired = claims.exp < now - leeway;
        let not_yet = claims.nbf.is_some_and(|nbf| nbf > now + leeway);
        let issued_in_future = claims.iat.is_some_and(|iat| iat > now + leeway);
        if expired || not_yet || issued_in_future {
            return Err(invalid());
        }
        let subject = claims.sub.filter(|s| !s.is_empty()).ok_or_else(invalid)?;
        Ok(VerifiedIdentity {
            provider: self.name.clone(),
            issuer: self.issuer.clone(),
            subject,
            // Only an address the issuer vouches for is copied: whoever typed an unconfirmed one
            // may not own it, and copying it would block its owner's signup.
            email: claims
                .email
                .filter(|_| claims.email_verified == Some(true) || self.trust_email),
            email_verified: claims.email_verified == Some(true),
        })
    }
}
