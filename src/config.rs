//! Settings, layered with the `config` crate: the built-in `config/default.toml`, then an optional
//! `config/$SESSIOND_ENV.toml`, then `SESSIOND__SECTION__KEY` environment variables, and last the
//! conventional `PORT` and `DATABASE_URL` that Railway/Render-style hosts set.
//!
//! Secrets are `SecretString`, so `Debug` on any settings value prints `[REDACTED]`.

use std::time::Duration;

use anyhow::Context;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

mod accounts;
mod bridge;
mod browser;
mod limits;
mod webauthn;

pub use accounts::{AccountSettings, MailSettings};
pub use bridge::{BridgeSettings, ProviderSettings};
pub use browser::{CookieSettings, CorsSettings};
pub use limits::RateLimitSettings;
pub use webauthn::WebauthnSettings;

use crate::domain::Scope;

const DEFAULTS: &str = include_str!("../config/default.toml");

#[derive(Debug, Clone, Deserialize)]
pub struct Settings {
    pub server: ServerSettings,
    pub database: DatabaseSettings,
    pub tokens: TokenSettings,
    pub sessions: SessionSettings,
    pub events: EventSettings,
    pub throttle: ThrottleSettings,
    pub audit: AuditSettings,
    #[serde(default)]
    pub metrics: MetricsSettings,
    #[serde(default)]
    pub keys: KeySettings,
    pub passwords: PasswordSettings,
    pub log: LogSettings,
    pub bridge: BridgeSettings,
    pub rate_limits: RateLimitSettings,
    pub cors: CorsSettings,
    pub cookies: CookieSettings,
    pub mail: MailSettings,
    pub accounts: AccountSettings,
    pub webauthn: WebauthnSettings,
    /// Keys for trusted backends, in addition to those made with `sessiond service-keys`.
    #[serde(default)]
    pub service_keys: Vec<ConfiguredKey>,
}

/// A key in configuration: `secret` (the key itself) or `sha256` (hex of its SHA-256).
#[derive(Debug, Clone, Deserialize)]
pub struct ConfiguredKey {
    pub name: String,
    #[serde(default)]
    pub secret: Option<SecretString>,
    #[serde(default)]
    pub sha256: Option<String>,
    pub scopes: Vec<Scope>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ServerSettings {
    pub host: String,
    pub port: u16,
    pub workers: usize,
    pub public_url: String,
    /// Read the client address from `X-Forwarded-For` (see `http::client_ip`).
    pub trust_proxy: bool,
    /// With `trust_proxy`: the entry this many hops from the right is the client.
    pub proxy_hops: usize,
    /// With `trust_proxy`: if set, the client is the first entry from the right outside these
    /// networks (instead of counting `proxy_hops`).
    pub trusted_proxies: Vec<ipnet::IpNet>,
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
    /// Guests without a live session are deleted this long after they were created.
    pub abandoned_guest_secs: i64,
    pub cache_entries: usize,
    /// Live sessions one user may hold (0 = no limit): one more ends the least recently used.
    #[serde(default)]
    pub max_per_user: i64,
}

/// Signing keys at rest (sealed with AES-256-GCM before they are stored).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct KeySettings {
    /// 32 bytes, standard base64 (`SESSIOND__KEYS__ENCRYPTION_KEY`): seals private keys.
    #[serde(default)]
    pub encryption_key: Option<SecretString>,
    /// Earlier encryption keys, still able to open rows until `sessiond keys seal` re-seals
    /// them (`SESSIOND__KEYS__OLD_ENCRYPTION_KEYS`, comma-separated).
    #[serde(default)]
    pub old_encryption_keys: Vec<SecretString>,
    /// In production, allow running without `encryption_key` (keys stored as plain PKCS#8).
    #[serde(default)]
    pub allow_plaintext: bool,
}

/// `GET /metrics`: open by default in development (for a private port); with `bearer_token`
/// set (e.g. `SESSIOND__METRICS__BEARER_TOKEN`), only scrapers presenting it may read. In
/// production one of the two must be said: a token, or `public = true`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct MetricsSettings {
    #[serde(default)]
    pub bearer_token: Option<SecretString>,
    /// In production, serve `/metrics` to anyone without a token (a private port).
    #[serde(default)]
    pub public: bool,
}

/// The per-account login throttle (the policy is the login throttle).
#[derive(Debug, Clone, Deserialize)]
pub struct ThrottleSettings {
    /// 0 turns per-account throttling off.
    pub client_failures: i64,
    pub window_secs: i64,
    pub base_delay_secs: i64,
    pub max_delay_secs: i64,
    pub account_failures: i64,
    /// How long an account stays "under attack" after its last failure past the ceiling.
    pub account_block_secs: i64,
    pub account_delay_ms: u64,
}

#[derive(Debug, Clone, Deserialize)]
pub struct AuditSettings {
    pub retention_secs: i64,
}

/// The session event feed (`GET /v1/events`).
#[derive(Debug, Clone, Deserialize)]
pub struct EventSettings {
    /// Events older than this are purged; a consumer resuming from before them starts over.
    pub retention_secs: i64,
    /// Events kept in memory for connected consumers; one further behind is dropped.
    pub consumer_ring: usize,
    /// How often each instance looks for new events without being woken.
    pub poll_interval_ms: u64,
    pub keepalive_secs: u64,
    /// Streams one service key may hold open on one instance; one more is 429.
    pub max_streams_per_key: usize,
}

#[derive(Debug, Clone, Deserialize)]
pub struct PasswordSettings {
    pub argon2_memory_kib: u32,
    pub argon2_iterations: u32,
    pub argon2_parallelism: u32,
    pub max_concurrent_hashes: usize,
    /// Hashes allowed to wait (queued or running); past it, `503 unavailable` at once.
    pub max_queued_hashes: usize,
    pub min_strength: u8,
}

#[derive(Debug, Clone, Deserialize)]
pub struct LogSettings {
    pub format: String,
    pub level: String,
}

impl Settings {
    /// `SESSIOND_ENV`: `development` unless set (the Docker image sets `production`).
    pub fn environment() -> String {
        std::env::var("SESSIOND_ENV").unwrap_or_else(|_| "development".into())
    }

    /// Reads the layered configuration from the process environment and refuses one that must
    /// not run (see [`Settings::problems`]): one error naming each setting and why.
    pub fn load() -> anyhow::Result<Settings> {
        let settings = Self::load_unchecked()?;
        let problems = settings.problems(Self::environment() == "production");
        if !problems.is_empty() {
            anyhow::bail!(
                "refusing to start with SESSIOND_ENV={}: {}",
                Self::environment(),
                problems.join("; ")
            );
        }
        Ok(settings)
    }

    /// Reads the layered configuration without judging it (`sessiond config check`).
    pub fn load_unchecked() -> anyhow::Result<Settings> {
        let env_name = Self::environment();
        let dir = std::env::var("SESSIOND_CONFIG_DIR").unwrap_or_else(|_| "config".into());
        let mut builder = config::Config::builder()
            .add_source(config::File::from_str(DEFAULTS, config::FileFormat::Toml))
            .add_source(config::File::with_name(&format!("{dir}/{env_name}")).required(false))
            .add_source(
                config::Environment::with_prefix("SESSIOND")
                    .prefix_separator("__")
                    .separator("__")
                    // Lists from one variable, comma-separated, e.g.
                    // SESSIOND__SERVER__TRUSTED_PROXIES=10.0.0.0/8,172.16.0.0/12
                    .list_separator(",")
                    .with_list_parse_key("server.trusted_proxies")
                    .with_list_parse_key("cors.allowed_origins")
                    .with_list_parse_key("keys.old_encryption_keys")
                    .with_list_parse_key("webauthn.origins")
                    .try_parsing(true),
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

impl Settings {
    /// What is wrong with the passkey settings: origins that are not URLs, or not on the
    /// relying party's domain; in production, origins a network attacker could serve (plain
    /// http anywhere but localhost).
    fn webauthn_problems(&self, production: bool) -> Vec<String> {
        let webauthn = &self.webauthn;
        let mut problems = Vec::new();
        if webauthn.rp_id.is_empty() || webauthn.rp_id.contains(['/', ':']) {
            problems.push(format!(
                "webauthn.rp_id is {:?}: it must be a bare domain such as example.com",
                webauthn.rp_id
            ));
        }
        if webauthn.origins.is_empty() {
            problems.push("webauthn.origins is empty: name the pages that use passkeys".into());
        }
        for origin in &webauthn.origins {
            let Ok(url) = url::Url::parse(origin) else {
                problems.push(format!("webauthn.origins: {origin:?} is not a URL"));
                continue;
            };
            let host = url.host_str().unwrap_or_default();
            let on_rp = host == webauthn.rp_id || host.ends_with(&format!(".{}", webauthn.rp_id));
            if !on_rp {
                problems.push(format!(
                    "webauthn.origins: {origin} is not on webauthn.rp_id ({})",
                    webauthn.rp_id
                ));
            }
            let localhost = matches!(url.host(), Some(url::Host::Domain("localhost")));
            if production && url.scheme() != "https" && !localhost {
                problems.push(format!(
                    "webauthn.origins: {origin} is not https (production allows plain http only \
                     on localhost)"
                ));
            }
        }
        problems
    }

    /// What is wrong with the mail settings: a URL that cannot work anywhere, and in production
    /// the development conveniences (`log:`, links to a non-https page).
    fn mail_problems(&self, production: bool) -> Vec<String> {
        let mut problems = Vec::new();
        let url = self.mail.url.expose_secret();
        if url == "log:" {
            if production {
                problems.push(
                    "mail.url is log:, which writes mailed links and codes to the log: production \
                     needs smtp:// or smtps:// (SESSIOND__MAIL__URL)"
                        .into(),
                );
            }
        } else {
            match url::Url::parse(url) {
                Ok(parsed) if matches!(parsed.scheme(), "smtp" | "smtps") => {
                    if parsed.host_str().is_none_or(str::is_empty) {
                        problems.push("mail.url names no host".into());
                    }
                }
                _ => problems.push(
                    "mail.url must be smtp://host[:port], smtps://host[:port] or log:".into(),
                ),
            }
        }
        let link = url::Url::parse(&self.accounts.link_url).ok();
        match &link {
            None => problems.push(format!(
                "accounts.link_url is {:?}: it must be the absolute URL of the page that handles \
                 mailed links",
                self.accounts.link_url
            )),
            Some(link) if production && (link.scheme() != "https" || is_loopback(link)) => {
                problems.push(format!(
                    "accounts.link_url is {:?}: production needs the public https:// page that \
                     handles mailed links (SESSIOND__ACCOUNTS__LINK_URL)",
                    self.accounts.link_url
                ));
            }
            Some(_) => {}
        }
        if production && self.mail.from.contains("localhost") {
            problems.push(format!(
                "mail.from is {:?}: production needs a sender address of your domain \
                 (SESSIOND__MAIL__FROM)",
                self.mail.from
            ));
        }
        if self.mail.from.parse::<lettre::message::Mailbox>().is_err() {
            problems.push(format!(
                "mail.from is {:?}: not a mailbox (`Name <address>` or `address`)",
                self.mail.from
            ));
        }
        problems
    }

    /// Why this configuration must not run: always for what is unsafe anywhere, and in
    /// production also for development conveniences. Each reason names its setting.
    pub fn problems(&self, production: bool) -> Vec<String> {
        let mut problems = Vec::new();
        for provider in &self.bridge.providers {
            let Some(jwks_url) = &provider.jwks_url else {
                continue;
            };
            let url = url::Url::parse(jwks_url).ok();
            let https = url.as_ref().is_some_and(|u| u.scheme() == "https");
            let loopback = url.as_ref().is_some_and(is_loopback);
            if !https && (production || !loopback) {
                problems.push(format!(
                    "bridge provider {}: jwks_url must be https:// (http:// only to a loopback \
                     address, outside production), or keys could be swapped in transit",
                    provider.name
                ));
            }
        }
        // Validation answers from the set of sessions ended within one access-token lifetime,
        // which an instance reads from the event log at start and keeps current by tailing it.
        let horizon = self.tokens.access_ttl_secs + crate::clock::CLOCK_LEEWAY_SECS;
        if self.events.retention_secs < horizon {
            problems.push(format!(
                "events.retention_secs is {}: it must be at least tokens.access_ttl_secs + {} \
                 ({horizon}), or a restarted instance could not know which sessions ended \
                 while their access tokens are still valid",
                self.events.retention_secs,
                crate::clock::CLOCK_LEEWAY_SECS,
            ));
        }
        if self.events.poll_interval_ms > 500 {
            problems.push(format!(
                "events.poll_interval_ms is {}: at most 500, so that revocations reach every \
                 instance within a second and validation can answer from memory",
                self.events.poll_interval_ms
            ));
        }
        problems.extend(self.mail_problems(production));
        problems.extend(self.webauthn_problems(production));
        if !production {
            return problems;
        }
        let public = url::Url::parse(&self.server.public_url).ok();
        if !public
            .as_ref()
            .is_some_and(|u| u.scheme() == "https" && !is_loopback(u))
        {
            problems.push(format!(
                "server.public_url is {:?}: production needs the public https:// URL clients \
                 use (it is the token issuer and the base of discovery URLs)",
                self.server.public_url
            ));
        }
        for key in &self.service_keys {
            let short = key
                .secret
                .as_ref()
                .is_some_and(|s| s.expose_secret().len() < MIN_SERVICE_KEY_BYTES);
            if short {
                problems.push(format!(
                    "service key {}: a secret shorter than {MIN_SERVICE_KEY_BYTES} bytes can be \
                     guessed (use `sessiond service-keys create` or `openssl rand -hex 32`)",
                    key.name
                ));
            }
        }
        let metrics_token = self
            .metrics
            .bearer_token
            .as_ref()
            .is_some_and(|t| !t.expose_secret().is_empty());
        if !metrics_token && !self.metrics.public {
            problems.push(
                "metrics.bearer_token is not set: /metrics would tell anyone who can reach the \
                 port how many sessions and logins there are (set \
                 SESSIOND__METRICS__BEARER_TOKEN to `openssl rand -hex 32`, or \
                 metrics.public = true for a private port)"
                    .to_string(),
            );
        }
        let sealed = self
            .keys
            .encryption_key
            .as_ref()
            .is_some_and(|k| !k.expose_secret().is_empty());
        if !sealed && !self.keys.allow_plaintext {
            problems.push(
                "keys.encryption_key is not set: signing keys would be stored usable by anyone \
                 with a database backup (set SESSIOND__KEYS__ENCRYPTION_KEY to \
                 `openssl rand -base64 32`, or keys.allow_plaintext = true to accept that)"
                    .to_string(),
            );
        }
        problems
    }
}

const MIN_SERVICE_KEY_BYTES: usize = 32;

fn is_loopback(url: &url::Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(host)) => host == "localhost",
        Some(url::Host::Ipv4(ip)) => ip.is_loopback() || ip.is_unspecified(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback() || ip.is_unspecified(),
        None => false,
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
