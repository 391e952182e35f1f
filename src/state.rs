//! What every handler shares, built once at start-up and handed out as `web::Data<AppState>`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::bridge::Bridge;
use crate::config::Settings;
use crate::events::EventFeed;
use crate::gate::SessionGate;
use crate::metrics::Metrics;
use crate::passwords::PasswordHasher;
use crate::rate_limit::RateLimits;
use crate::service_keys::ServiceKeys;
use crate::store::Store;
use crate::tokens::{AccessTokens, KeyRing};

pub struct AppState {
    pub settings: Settings,
    pub store: Store,
    pub tokens: AccessTokens,
    pub hasher: PasswordHasher,
    pub gate: Arc<SessionGate>,
    pub events: Arc<EventFeed>,
    pub service_keys: ServiceKeys,
    pub metrics: Metrics,
    pub bridge: Bridge,
    pub rate_limits: RateLimits,
    pub throttle: crate::throttle::LoginThrottle,
    /// Set when a shutdown begins: `/readyz` answers 503 and connections are not kept alive.
    shutting_down: AtomicBool,
}

impl AppState {
    pub fn is_shutting_down(&self) -> bool {
        self.shutting_down.load(Ordering::Relaxed)
    }

    /// The first step of a graceful shutdown: from now on `/readyz` is 503, so the load balancer
    /// stops sending new traffic, while everything is still served.
    pub fn begin_shutdown(&self) {
        self.shutting_down.store(true, Ordering::SeqCst);
    }

    /// The caller of a credential endpoint, after spending one of its rate-limited attempts.
    pub fn credential_attempt(
        &self,
        req: &actix_web::HttpRequest,
    ) -> Result<crate::extract::ClientInfo, crate::error::ApiError> {
        let client = crate::extract::ClientInfo::from_request(req, &self.settings.server);
        self.rate_limits.credentials(&client)?;
        Ok(client)
    }

    /// Validates a new email and password (the password may not lean on the email) and
    /// hashes the password.
    pub async fn new_credentials(
        &self,
        email: &str,
        password: secrecy::SecretString,
    ) -> Result<(crate::domain::Email, String), crate::error::ApiError> {
        let email = crate::domain::Email::parse(email)?;
        let policy = crate::domain::PasswordPolicy {
            min_strength: self.settings.passwords.min_strength,
        };
        let password = crate::domain::Password::parse(password, policy, &[email.as_str()])?;
        let hash = self.hasher.hash(password.secret()).await?;
        Ok((email, hash))
    }

    /// Records an audit event about `user_id` / `session_id`, from the request's client.
    pub async fn audit(
        &self,
        event: crate::audit::Event,
        user_id: Option<&str>,
        session_id: Option<&str>,
        req: &actix_web::HttpRequest,
        detail: serde_json::Value,
    ) {
        let client = crate::extract::ClientInfo::from_request(req, &self.settings.server);
        let subject = crate::audit::Subject {
            user_id,
            session_id,
            client: &client,
        };
        crate::audit::record(&self.store, event, subject, detail).await;
    }

    pub async fn build(settings: Settings, store: Store) -> anyhow::Result<AppState> {
        let sealing = Arc::new(crate::tokens::sealing::KeyEncryption::new(
            settings.keys.encryption_key.as_ref(),
            &settings.keys.old_encryption_keys,
        )?);
        let keys =
            Arc::new(KeyRing::load(store.clone(), settings.tokens.access_ttl_secs, sealing).await?);
        let keys_changed = keys.changes();
        let tokens = AccessTokens::new(
            keys,
            settings.tokens.issuer.clone(),
            settings.tokens.audience.clone(),
            settings.tokens.access_ttl_secs,
            settings.tokens.verified_cache_entries,
        );
        let hasher = PasswordHasher::new(&settings.passwords)?;
        let events = Arc::new(EventFeed::new(
            store.clone(),
            settings.events.consumer_ring,
            std::time::Duration::from_millis(settings.events.poll_interval_ms.max(10)),
        ));
        events.start().await?;
        let gate = Arc::new(SessionGate::new(
            store.clone(),
            settings.sessions.idle_timeout_secs,
            settings.database.acquire_timeout(),
            settings.sessions.cache_entries,
            events.waker(),
            keys_changed,
        ));
        let bridge = Bridge::new(&settings.bridge)?;
        let rate_limits = RateLimits::new(&settings.rate_limits, store.clone());
        let throttle =
            crate::throttle::LoginThrottle::new(store.clone(), settings.throttle.clone());
        let service_keys = ServiceKeys::load(store.clone(), &settings.service_keys).await?;
        Ok(AppState {
            settings,
            store,
            tokens,
            hasher,
            gate,
            events,
            service_keys,
            metrics: Metrics::new(),
            bridge,
            rate_limits,
            throttle,
            shutting_down: AtomicBool::new(false),
        })
    }
}
