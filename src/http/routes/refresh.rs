//! `POST /v1/token/refresh`: rotation with reuse detection and a grace window.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use secrecy::SecretString;
use serde::Deserialize;

use crate::http::cookies::RefreshCookie;
use crate::http::error::{ApiError, ApiResult};
use crate::http::extract::{Client, OptionalJson, SetsRefreshCookie};
use crate::http::state::AppState;
use crate::http::views::token_response;

#[derive(Deserialize)]
pub struct RefreshBody {
    refresh_token: Option<SecretString>,
}

pub async fn refresh(
    state: web::Data<AppState>,
    req: HttpRequest,
    Client(client): Client,
    _browser: SetsRefreshCookie,
    OptionalJson(body): OptionalJson<RefreshBody>,
) -> ApiResult<HttpResponse> {
    let settings = &state.settings;
    // In cookie mode, `SetsRefreshCookie` has already applied the cookie-mode checks.
    let presented = body
        .and_then(|b| b.refresh_token)
        .or_else(|| settings.cookies.read(&req))
        .ok_or(ApiError::NoRefreshToken(if settings.cookies.enabled {
            "no refresh_token in the body and no refresh cookie"
        } else {
            "no refresh_token in the body and no refresh cookie: is cookie mode on?"
        }))?;
    let issued = state.services.sessions.refresh(&presented, &client).await?;
    Ok(token_response(settings, StatusCode::OK, &issued))
}
