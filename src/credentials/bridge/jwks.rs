//! A provider's JWKS, fetched over HTTP(S) with a short timeout and a size cap, cached for its
//! `Cache-Control: max-age` (within bounds), and refetched for an unknown `kid` at most once per
//! `min_refetch`. When the issuer is down, the keys already held keep working; with no keys
//! held, verification fails closed. Keys come only from this URL, never from token headers.
//! Ages are read from the injected clock (whole seconds, like `max-age`).

use std::sync::Mutex;
use std::time::Duration;

use jsonwebtoken::jwk::{Jwk, JwkSet};

use crate::clock::Clock;

#[derive(Debug, Clone)]
pub struct FetchLimits {
    pub timeout: Duration,
    pub max_bytes: usize,
    pub min_refetch: Duration,
    pub default_ttl: Duration,
    pub max_ttl: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum JwksError {
    /// No keys are held and the issuer could not be reached: answer 503.
    #[error("the issuer's JWKS cannot be fetched: {0}")]
    Unavailable(String),
}

struct Held {
    keys: JwkSet,
    /// Unix seconds.
    fetched: i64,
    ttl: Duration,
}

pub struct RemoteJwks {
    url: String,
    http: reqwest::Client,
    limits: FetchLimits,
    clock: Clock,
    held: Mutex<Option<Held>>,
    /// Serialises fetches and remembers the last attempt (Unix seconds), for the refetch rate
    /// limit.
    fetching: tokio::sync::Mutex<Option<i64>>,
}

impl RemoteJwks {
    pub fn new(
        url: String,
        http: reqwest::Client,
        limits: FetchLimits,
        clock: Clock,
    ) -> RemoteJwks {
        RemoteJwks {
            url,
            http,
            limits,
            clock,
            held: Mutex::new(None),
            fetching: tokio::sync::Mutex::new(None),
        }
    }

    /// The key for `kid`: from the cache while fresh; otherwise after one (rate-limited) fetch.
    pub async fn key(&self, kid: &str) -> Result<Option<Jwk>, JwksError> {
        let (found, fresh, held_any) = self.lookup(kid);
        if let Some(jwk) = found.filter(|_| fresh) {
            return Ok(Some(jwk));
        }
        match self.refetch().await {
            Ok(()) => Ok(self.lookup(kid).0),
            // Stale but held keys keep working through an issuer outage.
            Err(_) if held_any => Ok(self.lookup(kid).0),
            Err(error) => Err(error),
        }
    }

    fn lookup(&self, kid: &str) -> (Option<Jwk>, bool, bool) {
        let held = self.held.lock().expect("jwks lock");
        match held.as_ref() {
            Some(h) => {
                let fresh = self.age(h.fetched) < h.ttl;
                (h.keys.find(kid).cloned(), fresh, true)
            }
            None => (None, false, false),
        }
    }

    async fn refetch(&self) -> Result<(), JwksError> {
        let mut last_attempt = self.fetching.lock().await;
        if last_attempt.is_some_and(|at| self.age(at) < self.limits.min_refetch) {
            return if self.held.lock().expect("jwks lock").is_some() {
                Ok(())
            } else {
                Err(JwksError::Unavailable(
                    "fetched recently without success".into(),
                ))
            };
        }
        *last_attempt = Some(self.clock.now());
        let (keys, ttl) = self.fetch().await.map_err(|error| {
            tracing::warn!(url = %self.url, %error, "JWKS fetch failed");
            JwksError::Unavailable(error)
        })?;
        *self.held.lock().expect("jwks lock") = Some(Held {
            keys,
            fetched: self.clock.now(),
            ttl,
        });
        Ok(())
    }

    /// How long ago `at` (Unix seconds) was; never negative.
    fn age(&self, at: i64) -> Duration {
        Duration::from_secs(u64::try_from(self.clock.now() - at).unwrap_or(0))
    }

    async fn fetch(&self) -> Result<(JwkSet, Duration), String> {
        let mut response = self
            .http
            .get(&self.url)
            .timeout(self.limits.timeout)
            .send()
            .await
            .map_err(|e| e.to_string())?;
        if !response.status().is_success() {
            return Err(format!("status {}", response.status()));
        }
        let ttl = max_age(&response)
            .unwrap_or(self.limits.default_ttl)
            .clamp(self.limits.min_refetch, self.limits.max_ttl);
        if response
            .content_length()
            .is_some_and(|n| n as usize > self.limits.max_bytes)
        {
            return Err("response too large".into());
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| e.to_string())? {
            if body.len() + chunk.len() > self.limits.max_bytes {
                return Err("response too large".into());
            }
            body.extend_from_slice(&chunk);
        }
        let keys: JwkSet = serde_json::from_slice(&body).map_err(|e| format!("not a JWKS: {e}"))?;
        Ok((keys, ttl))
    }
}

fn max_age(response: &reqwest::Response) -> Option<Duration> {
    let value = response
        .headers()
        .get(reqwest::header::CACHE_CONTROL)?
        .to_str()
        .ok()?;
    value.split(',').find_map(|directive| {
        let (name, seconds) = directive.trim().split_once('=')?;
        if !name.eq_ignore_ascii_case("max-age") {
            return None;
        }
        seconds.trim().parse().ok().map(Duration::from_secs)
    })
}
