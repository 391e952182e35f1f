//! Passkeys (`../shared/API.md`, "Second factors, passkeys and step-up"): registration (a guest
//! becomes permanent by it), the caller's list, deletion, and discoverable sign-in.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::clock;
use crate::http::error::ApiResult;
use crate::http::extract::{Authenticated, Client, Json, OptionalJson, SetsRefreshCookie};
use crate::http::state::AppState;
use crate::http::views::{no_store, token_response};
use crate::services::passkeys::{PasskeyEntry, Started};

fn started(started: Started) -> HttpResponse {
    no_store(StatusCode::OK).json(json!({
        "challenge_id": started.challenge_id,
        "options": started.options,
    }))
}

fn view(passkey: &PasskeyEntry) -> Value {
    json!({
        "id": passkey.id,
        "name": passkey.name,
        "created_at": clock::rfc3339(passkey.created_at),
        "last_used_at": passkey.last_used_at.map(clock::rfc3339),
    })
}

#[derive(Deserialize)]
pub struct RegisterStartBody {
    #[serde(default)]
    name: Option<String>,
}

pub async fn register_start(
    state: web::Data<AppState>,
    auth: Authenticated,
    OptionalJson(body): OptionalJson<RegisterStartBody>,
) -> ApiResult<HttpResponse> {
    let services = &state.services;
    let claims = &auth.claims;
    let snapshot = services
        .validation
        .live_session(&claims.sid, &claims.sub)
        .await?;
    let name = body.and_then(|b| b.name);
    let ceremony = services
        .passkeys
        .start_registration(claims, &snapshot.user, name.as_deref())
        .await?;
    Ok(started(ceremony))
}

/// The second half of a ceremony: its id and the browser's credential (JSON form).
#[derive(Deserialize)]
pub struct CeremonyBody {
    pub challenge_id: String,
    pub credential: Value,
}

pub async fn register_finish(
    state: web::Data<AppState>,
    auth: Authenticated,
    Client(client): Client,
    Json(body): Json<CeremonyBody>,
) -> ApiResult<HttpResponse> {
    let passkey = state
        .services
        .passkeys
        .finish_registration(&auth.claims, &body.challenge_id, body.credential, &client)
        .await?;
    Ok(no_store(StatusCode::CREATED).json(view(&passkey)))
}

pub async fn list(state: web::Data<AppState>, auth: Authenticated) -> ApiResult<HttpResponse> {
    let passkeys = state.services.passkeys.list(&auth.claims.sub).await?;
    let passkeys: Vec<Value> = passkeys.iter().map(view).collect();
    Ok(no_store(StatusCode::OK).json(json!({ "passkeys": passkeys })))
}

pub async fn delete(
    state: web::Data<AppState>,
    auth: Authenticated,
    Client(client): Client,
    path: web::Path<String>,
) -> ApiResult<HttpResponse> {
    state
        .services
        .passkeys
        .delete(&auth.claims, &path.into_inner(), &client)
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

pub async fn login_start(
    state: web::Data<AppState>,
    Client(client): Client,
    OptionalJson(_body): OptionalJson<serde_json::Map<String, Value>>,
) -> ApiResult<HttpResponse> {
    let ceremony = state.services.passkeys.start_sign_in(&client).await?;
    Ok(started(ceremony))
}

pub async fn login_finish(
    state: web::Data<AppState>,
    Client(client): Client,
    _browser: SetsRefreshCookie,
    Json(body): Json<CeremonyBody>,
) -> ApiResult<HttpResponse> {
    let issued = state
        .services
        .passkeys
        .sign_in(&body.challenge_id, body.credential, &client)
        .await?;
    Ok(token_response(&state.settings, StatusCode::OK, &issued))
}
