//! Third-party issuers the session bridge accepts (verified by the bridge module).

use jsonwebtoken::Algorithm;
use secrecy::SecretString;
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
pub struct BridgeSettings {
    #[serde(default)]
    pub providers: Vec<ProviderSettings>,
    pub jwks_timeout_ms: u64,
    pub jwks_max_bytes: usize,
    pub jwks_min_refetch_secs: u64,
    pub jwks_default_ttl_secs: u64,
    pub jwks_max_ttl_secs: u64,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ProviderSettings {
    pub name: String,
    pub issuer: String,
    /// One audience or several; a token must carry at least one of them.
    pub audience: Vec<String>,
    pub algorithms: Vec<Algorithm>,
    /// HS256/384/512 shared secret (e.g. Supabase's legacy JWT secret).
    #[serde(default)]
    pub secret: Option<SecretString>,
    #[serde(default)]
    pub jwks_url: Option<String>,
    #[serde(default = "default_leeway")]
    pub leeway_secs: u64,
    /// Copy the `email` claim even without `email_verified: true`: only for issuers that
    /// confirm every address before putting it in a token (see README, "Session bridge").
    #[serde(default)]
    pub trust_email: bool,
}

fn default_leeway() -> u64 {
    30
}
