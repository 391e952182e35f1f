//! Settings, layered with the `config` crate: the built-in `config/default.toml`, then an optional
//! `config/$SESSIOND_ENV.toml`, then `SESSIOND__SECTION__KEY` environment variables, and last the
//! conventional `PORT` and `DATABASE_URL` that Railway/Render-style hosts set.
//!
//! Secrets are `SecretString`, so `Debug` on any settings value prints `[REDACTED]`.

use std::time::Duration;

use anyhow::Context;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

const DEFAULTS: &str = include_str!("../config/default.toml");

#[derive(Debug, Clone, Deserialize)]
pub struct Settings {
    pub server: ServerSettings,
    pub database: DatabaseSettings,
    pub tokens: TokenSettings,
    pub sessions: SessionSettings,
    pub events: EventSettings,
    pub passwords: PasswordSettings,
    pub log: LogSettings,
    pub bridge: crate::bridge::BridgeSettings,
    pub rate_limits: crate::rate_limit::RateLimitSettings,
    pub cors: crate::cors::CorsSettings,
    pub cookies: crate::cookies::CookieSettings,
    /// Keys for trusted backends, in addition to those made with `sessiond service-keys`.
    #[serde(default)]
    pub service_keys: Vec<crate::service_keys::ConfiguredKey>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ServerSettings {
    pub host: String,
    pub port: u16,
    pub workers: usize,
    pub public_url: String,
    pub trust_proxy: bool,
    /// After SIGTERM/SIGINT, how long `/readyz` is 503 while everything is still served.
    pub shutdown_drain_secs: u64,
    /// Then, how long requests in flight may take before their connections are closed.
    pub shutdown_timeout_secs: u64,
}

#[derive(Debug, Clone, Deserialize)]
pub struct DatabaseSettings {
    /// May carry a password, hence secret; use [`DatabaseSettings::redacted_url`] in messages.
    pub url: SecretString,
    pub max_connections: u32,
    pub acquire_timeout_ms: u64,
}

#[derive(Debug, Clone, Deserialize)]
pub struct TokenSettings {
    pub issuer: String,
    pub audience: String,
    pub access_ttl_secs: i64,
    pub key_reload_secs: u64,
    pub verified_cache_entries: usize,
}

#[derive(Debug, Clone, Deserialize)]
pub struct SessionSettings {
    pub permanent_ttl_secs: i64,
    pub guest_ttl_secs: i64,
    pub idle_timeout_secs: i64,
    pub refresh_grace_secs: i64,
    pub cache_entries: usize,
}

/// The session event feed (`GET /v1/events`, see `crate::events`).
#[derive(Debug, Clone, Deserialize)]
pub struct EventSettings {
    /// Events older than this are purged; a consumer resuming from before them starts over.
    pub retention_secs: i64,
    /// Events kept in memory for connected consumers; one further behind is dropped.
    pub consumer_ring: usize,
    /// How often each instance looks for new events without being woken.
    pub poll_interval_ms: u64,
    pub keepalive_secs: u64,
}

#[derive(Debug, Clone, Deserialize)]
pub struct PasswordSettings {
    pub argon2_memory_kib: u32,
    pub argon2_iterations: u32,
    pub argon2_parallelism: u32,
    pub max_concurrent_hashes: usize,
    pub min_strength: u8,
}

#[derive(Debug, Clone, Deserialize)]
pub struct LogSettings {
    pub format: String,
    pub level: String,
}

impl Settings {
    /// Reads the layered configuration from the process environment.
    pub fn load() -> anyhow::Result<Settings> {
        let env_name = std::env::var("SESSIOND_ENV").unwrap_or_else(|_| "development".into());
        let dir = std::env::var("SESSIOND_CONFIG_DIR").unwrap_or_else(|_| "config".into());
        let mut builder = config::Config::builder()
            .add_source(config::File::from_str(DEFAULTS, config::FileFormat::Toml))
            .add_source(config::File::with_name(&format!("{dir}/{env_name}")).required(false))
            .add_source(
                config::Environment::with_prefix("SESSIOND")
                    .prefix_separator("__")
                    .separator("__"),
            );
        if let Ok(port) = std::env::var("PORT") {
            builder = builder.set_override("server.port", port)?;
        }
        if let Ok(url) = std::env::var("DATABASE_URL") {
            builder = builder.set_override("database.url", url)?;
        }
        Self::from_config(builder.build()?)
    }

    /// The built-in defaults alone; tests start from these and override fields.
    pub fn defaults() -> Settings {
        let raw = config::Config::builder()
            .add_source(config::File::from_str(DEFAULTS, config::FileFormat::Toml))
            .build()
            .expect("built-in defaults parse");
        Self::from_config(raw).expect("built-in defaults are valid")
    }

    fn from_config(raw: config::Config) -> anyhow::Result<Settings> {
        let mut settings: Settings = raw
            .try_deserialize()
            .context("Failed to read the configuration")?;
        settings.cors.validate()?;
        settings.cookies.validate()?;
        if settings.tokens.issuer.is_empty() {
            settings.tokens.issuer = settings.server.public_url.trim_end_matches('/').into();
        }
        Ok(settings)
    }
}

impl DatabaseSettings {
    pub fn acquire_timeout(&self) -> Duration {
        Duration::from_millis(self.acquire_timeout_ms)
    }

    /// The URL with any password replaced, safe for logs and error messages.
    pub fn redacted_url(&self) -> String {
        redact_url(self.url.expose_secret())
    }
}

fn redact_url(raw: &str) -> String {
    match url::Url::parse(raw) {
        Ok(mut url) => {
            if url.password().is_some() {
                let _ = url.set_password(Some("***"));
            }
            url.to_string()
        }
        Err(_) => "<unparseable database url>".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_passwords_from_database_urls() {
        let shown = redact_url("postgres://app:hunter2@db.internal:5432/auth");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("db.internal"));
    }

    #[test]
    fn debug_output_hides_the_database_url() {
        let mut settings = Settings::defaults();
        settings.database.url = SecretString::from("postgres://app:hunter2@db/auth");
        assert!(!format!("{settings:?}").contains("hunter2"));
    }

    #[test]
    fn issuer_defaults_to_the_public_url() {
        let settings = Settings::defaults();
        assert_eq!(settings.tokens.issuer, "http://localhost:8080");
    }
}
