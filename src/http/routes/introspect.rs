//! `POST /v1/introspect` (RFC 7662): "is this access token valid right now?" for backends
//! holding a service key. Anything but a live token answers exactly `{"active": false}`.
//! Answered from memory in the steady state (verified-token cache and the set of recently
//! ended sessions), at any number of live sessions.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::json;

use crate::domain::Scope;
use crate::error::Error;
use crate::http::error::{ApiError, ApiResult};
use crate::http::extract::{JsonOrForm, ServiceClient};
use crate::http::state::AppState;
use crate::http::views::no_store;

#[derive(Deserialize)]
pub struct IntrospectBody {
    token: Option<SecretString>,
}

pub async fn introspect(
    state: web::Data<AppState>,
    client: ServiceClient,
    JsonOrForm(body): JsonOrForm<IntrospectBody>,
) -> ApiResult<HttpResponse> {
    client.require(Scope::Introspect)?;
    let token = body
        .token
        .ok_or_else(|| ApiError::InvalidRequest("the token parameter is required".into()))?;
    let services = &state.services;
    let Ok(claims) = services
        .validation
        .verify_token(token.expose_secret())
        .await
    else {
        return Ok(inactive());
    };
    match services.validation.token_session_live(&claims).await {
        Ok(_) => Ok(no_store(StatusCode::OK).json(json!({
            "active": true,
            "sub": claims.sub,
            "sid": claims.sid,
            "exp": claims.exp,
            "iat": claims.iat,
            "iss": claims.iss,
            "aud": claims.aud,
            "jti": claims.jti,
            "token_type": "access_token",
            "is_guest": claims.is_guest,
            "amr": claims.amr,
            "auth_time": claims.auth_time(),
            "acr": claims.acr(),
            "email": claims.email,
        }))),
        Err(Error::InvalidToken(_)) => Ok(inactive()),
        Err(other) => Err(other.into()),
    }
}

pub fn inactive() -> HttpResponse {
    no_store(StatusCode::OK).json(json!({ "active": false }))
}
