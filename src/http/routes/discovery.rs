//! Discovery: the JWKS other services verify access tokens with, OpenID-style metadata, and the
//! OpenAPI description of this API.

use actix_web::http::header;
use actix_web::{HttpResponse, web};
use serde_json::json;

use crate::http::state::AppState;

const OPENAPI: &str = include_str!("../../../openapi.yaml");

pub async fn jwks(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok()
        // Short enough that a rotated key is picked up quickly by verifiers that cache.
        .insert_header((header::CACHE_CONTROL, "public, max-age=300"))
        .json(state.services.validation.jwks().as_ref())
}

pub async fn openid_configuration(state: web::Data<AppState>) -> HttpResponse {
    let base = state.settings.server.public_url.trim_end_matches('/');
    HttpResponse::Ok().json(json!({
        "issuer": state.services.validation.issuer(),
        "jwks_uri": format!("{base}/.well-known/jwks.json"),
        "token_endpoint": format!("{base}/v1/token/refresh"),
        "introspection_endpoint": format!("{base}/v1/introspect"),
        "revocation_endpoint": format!("{base}/v1/revoke"),
        "userinfo_endpoint": format!("{base}/v1/me"),
        "id_token_signing_alg_values_supported": ["ES256"],
        "token_endpoint_auth_methods_supported": ["none"],
        "grant_types_supported": ["refresh_token"],
        "response_types_supported": ["token"],
        "subject_types_supported": ["public"],
    }))
}

pub async fn openapi() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/yaml")
        .body(OPENAPI)
}
