//! `POST /v1/revoke` (RFC 7009): whoever holds a token may revoke it, which ends its session.
//! The answer is 200 whether or not the token was known, so it reveals nothing.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use secrecy::SecretString;
use serde::Deserialize;

use crate::http::error::{ApiError, ApiResult};
use crate::http::extract::{Client, JsonOrForm};
use crate::http::state::AppState;
use crate::http::views::no_store;

#[derive(Deserialize)]
pub struct RevokeBody {
    token: Option<SecretString>,
    #[serde(default)]
    #[allow(dead_code)] // accepted per RFC 7009; both kinds are recognized by shape
    token_type_hint: Option<String>,
}

pub async fn revoke(
    state: web::Data<AppState>,
    Client(client): Client,
    JsonOrForm(body): JsonOrForm<RevokeBody>,
) -> ApiResult<HttpResponse> {
    let token = body
        .token
        .ok_or_else(|| ApiError::InvalidRequest("the token parameter is required".into()))?;
    state.services.ending.revoke_token(&token, &client).await?;
    Ok(no_store(StatusCode::OK).finish())
}
