//! `POST /v1/upgrade`: a guest becomes a permanent user in place: same user id, the calling
//! session now permanent, email and password set.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use secrecy::SecretString;
use serde::Deserialize;

use crate::http::cookies::RefreshCookie;
use crate::http::error::ApiResult;
use crate::http::extract::{Authenticated, Client, Json, SetsRefreshCookie};
use crate::http::state::AppState;
use crate::http::views::token_response;
use crate::services::accounts::Upgrade;

#[derive(Deserialize)]
pub struct UpgradeBody {
    email: String,
    password: SecretString,
    /// The guest's current refresh token (optional; in cookie mode the cookie is used). The
    /// upgrade spends it; presenting it lets a tab racing the upgrade converge on the new token.
    #[serde(default)]
    refresh_token: Option<SecretString>,
}

pub async fn upgrade(
    state: web::Data<AppState>,
    req: HttpRequest,
    Client(client): Client,
    _browser: SetsRefreshCookie,
    auth: Authenticated,
    Json(body): Json<UpgradeBody>,
) -> ApiResult<HttpResponse> {
    let services = &state.services;
    let settings = &state.settings;
    let upgrade = Upgrade {
        email: &body.email,
        password: body.password,
        refresh_token: body.refresh_token.or_else(|| settings.cookies.read(&req)),
    };
    let claims = &auth.claims;
    let snapshot = services
        .validation
        .live_session(&claims.sid, &claims.sub)
        .await?;
    let (session, guest) = (&snapshot.session, &snapshot.user);
    let issued = services
        .accounts
        .upgrade(guest, &session.id, session.created_at, upgrade, &client)
        .await?;
    Ok(token_response(settings, StatusCode::OK, &issued))
}
