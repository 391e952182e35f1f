//! What every handler shares, built once at start-up and handed out as `web::Data<AppState>`.

use std::sync::Arc;

use crate::config::Settings;
use crate::gate::SessionGate;
use crate::passwords::PasswordHasher;
use crate::store::Store;
use crate::tokens::{AccessTokens, KeyRing};

pub struct AppState {
    pub settings: Settings,
    pub store: Store,
    pub tokens: AccessTokens,
    pub hasher: PasswordHasher,
    pub gate: Arc<SessionGate>,
}

impl AppState {
    pub async fn build(settings: Settings, store: Store) -> anyhow::Result<AppState> {
        let keys = Arc::new(KeyRing::load(store.clone(), settings.tokens.access_ttl_secs).await?);
        let tokens = AccessTokens::new(
            keys,
            settings.tokens.issuer.clone(),
            settings.tokens.audience.clone(),
            settings.tokens.access_ttl_secs,
            settings.tokens.verified_cache_entries,
        );
        let hasher = PasswordHasher::new(&settings.passwords)?;
        let gate = Arc::new(SessionGate::new(
            store.clone(),
            settings.sessions.idle_timeout_secs,
            settings.sessions.cache_entries,
        ));
        Ok(AppState {
            settings,
            store,
            tokens,
            hasher,
            gate,
        })
    }
}
