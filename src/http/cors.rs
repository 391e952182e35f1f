//! CORS for browser apps on other origins: an explicit allowlist, credentials allowed for
//! listed origins only. `*` and `null` are refused at start-up: a credentialed API must never
//! answer every origin, and `null` is what sandboxed iframes and `file:` pages send.

use crate::config::CorsSettings;
use actix_cors::Cors;
use actix_web::http::{Method, header};

/// The CORS middleware for the configured allowlist.
pub fn middleware(settings: &CorsSettings) -> Cors {
    let allowed = settings.allowed_origins.clone();
    Cors::default()
        .allowed_origin_fn(move |origin, _| {
            origin
                .to_str()
                .is_ok_and(|o| allowed.iter().any(|a| a == o))
        })
        .allowed_methods([Method::GET, Method::POST, Method::DELETE])
        .allowed_headers([
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            header::HeaderName::from_static("x-request-id"),
        ])
        .expose_headers([
            header::HeaderName::from_static("x-request-id"),
            header::RETRY_AFTER,
            // The RFC 9470 challenge (max_age, acr_values) a page needs to step up.
            header::WWW_AUTHENTICATE,
        ])
        .supports_credentials()
        .max_age(600)
        // Other origins simply get no CORS headers (the browser then refuses); servers,
        // which send no Origin, are unaffected either way.
        .block_on_origin_mismatch(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(origins: &[&str]) -> CorsSettings {
        CorsSettings {
            allowed_origins: origins.iter().map(|o| o.to_string()).collect(),
        }
    }

    #[test]
    fn wildcards_null_and_paths_are_refused() {
        assert!(settings(&["*"]).validate().is_err());
        assert!(settings(&["null"]).validate().is_err());
        assert!(settings(&["https://app.example.com/"]).validate().is_err());
        assert!(
            settings(&["https://app.example.com/path"])
                .validate()
                .is_err()
        );
        assert!(
            settings(&["https://app.example.com", "http://localhost:5173"])
                .validate()
                .is_ok()
        );
    }
}
