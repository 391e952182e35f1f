//! Signup, login and guest sessions: the three ways to open a session locally.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use secrecy::SecretString;
use serde::Deserialize;

use crate::http::error::ApiResult;
use crate::http::extract::{Client, Json, OptionalJson, SetsRefreshCookie};
use crate::http::state::AppState;
use crate::http::views::token_response;

#[derive(Deserialize)]
pub struct Credentials {
    email: String,
    password: SecretString,
}

pub async fn signup(
    state: web::Data<AppState>,
    Client(client): Client,
    _browser: SetsRefreshCookie,
    Json(body): Json<Credentials>,
) -> ApiResult<HttpResponse> {
    let services = &state.services;
    let issued = services
        .accounts
        .signup(&body.email, body.password, &client)
        .await?;
    Ok(token_response(
        &state.settings,
        StatusCode::CREATED,
        &issued,
    ))
}

pub async fn login(
    state: web::Data<AppState>,
    Client(client): Client,
    _browser: SetsRefreshCookie,
    Json(body): Json<Credentials>,
) -> ApiResult<HttpResponse> {
    let services = &state.services;
    let issued = services
        .accounts
        .login(&body.email, &body.password, &client)
        .await?;
    Ok(token_response(&state.settings, StatusCode::OK, &issued))
}

pub async fn guest(
    state: web::Data<AppState>,
    Client(client): Client,
    _browser: SetsRefreshCookie,
    OptionalJson(_body): OptionalJson<serde_json::Map<String, serde_json::Value>>,
) -> ApiResult<HttpResponse> {
    let services = &state.services;
    let issued = services.accounts.guest(&client).await?;
    Ok(token_response(
        &state.settings,
        StatusCode::CREATED,
        &issued,
    ))
}
