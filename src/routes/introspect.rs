//! `POST /v1/introspect` (RFC 7662): "is this access token valid right now?" for backends
//! holding a service key. Anything but a live token answers exactly `{"active": false}`.
//! Answered from memory in the steady state (verified-token cache and session gate).

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::json;

use crate::clock;
use crate::error::{ApiError, ApiResult};
use crate::extract::{JsonOrForm, ServiceClient};
use crate::issuance::no_store;
use crate::service_keys::Scope;
use crate::state::AppState;

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
    let Ok(claims) = state.tokens.verify(token.expose_secret()).await else {
        return Ok(inactive());
    };
    match state
        .gate
        .live(&claims.sid, &claims.sub, clock::now())
        .await
    {
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
            "email": claims.email,
        }))),
        Err(ApiError::InvalidToken(_)) => Ok(inactive()),
        Err(other) => Err(other),
    }
}

pub fn inactive() -> HttpResponse {
    no_store(StatusCode::OK).json(json!({ "active": false }))
}
