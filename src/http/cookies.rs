//! Browser cookie mode. Token responses set the refresh token as an HttpOnly cookie (and leave
//! it out of the JSON, so page scripts never hold it); refresh and logout accept that cookie.
//! Because a browser attaches cookies to cross-site requests too, a cookie-authenticated
//! state change must come from an allowed `Origin` with a JSON content type (which a plain
//! HTML form cannot send): otherwise `403 forbidden`.

use crate::config::CookieSettings;
use crate::error::Error;
use crate::http::error::ApiError;
use crate::http::state::HttpSettings;
use actix_web::HttpRequest;
use actix_web::cookie::time::Duration as CookieDuration;
use actix_web::cookie::{Cookie, SameSite};
use actix_web::http::header;
use secrecy::SecretString;

fn same_site(settings: &CookieSettings) -> SameSite {
    match settings.same_site.as_str() {
        "strict" => SameSite::Strict,
        "none" => SameSite::None,
        _ => SameSite::Lax,
    }
}

fn build(settings: &CookieSettings, value: String, max_age_secs: i64) -> Cookie<'static> {
    Cookie::build(settings.name.clone(), value)
        .http_only(true)
        .secure(settings.secure)
        .same_site(same_site(settings))
        .path(settings.path.clone())
        .max_age(CookieDuration::seconds(max_age_secs))
        .finish()
}

/// The refresh cookie as the configured [`CookieSettings`] describe it.
pub trait RefreshCookie {
    fn refresh_cookie(&self, token: &str, max_age_secs: i64) -> Cookie<'static>;
    /// Expires the cookie in the browser (logout).
    fn clearing_cookie(&self) -> Cookie<'static>;
    /// The refresh token from the cookie, when cookie mode is on.
    fn read(&self, req: &HttpRequest) -> Option<SecretString>;
}

impl RefreshCookie for CookieSettings {
    fn refresh_cookie(&self, token: &str, max_age_secs: i64) -> Cookie<'static> {
        build(self, token.to_string(), max_age_secs)
    }

    fn clearing_cookie(&self) -> Cookie<'static> {
        build(self, String::new(), 0)
    }

    fn read(&self, req: &HttpRequest) -> Option<SecretString> {
        if !self.enabled {
            return None;
        }
        let cookie = req.cookie(&self.name)?;
        let value = cookie.value();
        (!value.is_empty()).then(|| SecretString::from(value.to_string()))
    }
}

/// The CSRF defence for a request authenticated by the cookie: an `Origin` that is ours or on
/// the CORS allowlist, and `Content-Type: application/json`.
pub fn check_cookie_request(req: &HttpRequest, settings: &HttpSettings) -> Result<(), ApiError> {
    let forbidden = |why| Err(ApiError::from(Error::Forbidden(why)));
    let origin = req
        .headers()
        .get(header::ORIGIN)
        .and_then(|v| v.to_str().ok());
    let Some(origin) = origin else {
        return forbidden("a cookie-authenticated request needs an Origin header");
    };
    let own = url::Url::parse(&settings.server.public_url)
        .map(|u| u.origin().ascii_serialization())
        .unwrap_or_default();
    let allowed = origin == own || settings.cors.allowed_origins.iter().any(|o| o == origin);
    if !allowed {
        return forbidden("this Origin may not use the session cookie");
    }
    let json = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.trim_start().starts_with("application/json"));
    if !json {
        return forbidden("a cookie-authenticated request needs Content-Type: application/json");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> CookieSettings {
        crate::config::Settings::defaults().cookies
    }

    #[test]
    fn the_default_cookie_is_a_secure_host_only_httponly_cookie() {
        let cookie = settings().refresh_cookie("abc", 60).to_string();
        assert!(
            cookie.starts_with("__Host-sessiond_refresh=abc"),
            "{cookie}"
        );
        for part in ["HttpOnly", "Secure", "SameSite=Lax", "Path=/", "Max-Age=60"] {
            assert!(cookie.contains(part), "{cookie} lacks {part}");
        }
    }

    #[test]
    fn insecure_host_cookies_and_insecure_samesite_none_are_refused() {
        let mut bad = settings();
        bad.secure = false;
        assert!(bad.validate().is_err());
        let mut local = settings();
        local.secure = false;
        local.name = "sessiond_refresh".into();
        assert!(local.validate().is_ok());
        local.same_site = "none".into();
        assert!(local.validate().is_err());
    }
}
