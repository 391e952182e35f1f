//! `POST /v1/bridge`: exchange a verified third-party token for a local session.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use secrecy::SecretString;
use serde::Deserialize;

use crate::http::error::ApiResult;
use crate::http::extract::{Client, Json, SetsRefreshCookie};
use crate::http::state::AppState;
use crate::http::views::token_response;

#[derive(Deserialize)]
pub struct BridgeBody {
    provider: String,
    token: SecretString,
}

pub async fn bridge(
    state: web::Data<AppState>,
    Client(client): Client,
    _browser: SetsRefreshCookie,
    Json(body): Json<BridgeBody>,
) -> ApiResult<HttpResponse> {
    let services = &state.services;
    let issued = services
        .bridge
        .bridge(&body.provider, &body.token, &client)
        .await?;
    Ok(token_response(&state.settings, StatusCode::OK, &issued))
}
