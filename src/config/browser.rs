//! Settings for browsers: the refresh cookie and the CORS allowlist (used by `http/`).

use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
pub struct CookieSettings {
    pub enabled: bool,
    /// `__Host-` binds the cookie to this exact host (it requires `secure` and path `/`).
    pub name: String,
    /// Off only for local development over http://localhost.
    pub secure: bool,
    /// `lax`, `strict` or `none` (`none` needs `secure`).
    pub same_site: String,
    pub path: String,
}

impl CookieSettings {
    pub fn validate(&self) -> anyhow::Result<()> {
        anyhow::ensure!(
            matches!(self.same_site.as_str(), "lax" | "strict" | "none"),
            "cookies.same_site must be lax, strict or none"
        );
        if self.name.starts_with("__Host-") {
            anyhow::ensure!(
                self.secure && self.path == "/",
                "a __Host- cookie needs secure = true and path = \"/\" (for http://localhost, \
                 set secure = false and a name without __Host-)"
            );
        }
        anyhow::ensure!(
            self.same_site != "none" || self.secure,
            "cookies.same_site = none needs secure = true"
        );
        Ok(())
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct CorsSettings {
    /// Exact origins, `scheme://host[:port]`, e.g. `https://app.example.com`.
    #[serde(default)]
    pub allowed_origins: Vec<String>,
}

impl CorsSettings {
    /// Checks the allowlist once at start-up.
    pub fn validate(&self) -> anyhow::Result<()> {
        for origin in &self.allowed_origins {
            anyhow::ensure!(
                origin != "*" && origin != "null",
                "cors.allowed_origins may not contain {origin:?}: list exact origins"
            );
            let url = url::Url::parse(origin)
                .map_err(|_| anyhow::anyhow!("cors origin {origin:?} is not a URL"))?;
            anyhow::ensure!(
                url.origin().ascii_serialization() == *origin,
                "cors origin {origin:?} must be exactly scheme://host[:port], without a path"
            );
        }
        Ok(())
    }
}
