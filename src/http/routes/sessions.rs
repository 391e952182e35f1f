//! `GET /v1/sessions` and `DELETE /v1/sessions/{id}`: a user's devices.

use actix_web::{HttpResponse, web};
use serde_json::json;

use crate::domain::SessionId;
use crate::error::Error;
use crate::http::error::ApiResult;
use crate::http::extract::{Authenticated, Client};
use crate::http::state::AppState;
use crate::http::views::SessionView;

pub async fn list(state: web::Data<AppState>, auth: Authenticated) -> ApiResult<HttpResponse> {
    let sessions = state
        .services
        .sessions
        .list_sessions(&auth.claims.sub)
        .await?;
    let sessions = SessionView::list(&sessions, &auth.claims.sid);
    Ok(HttpResponse::Ok().json(json!({ "sessions": sessions })))
}

/// Revokes one of the caller's own sessions; anyone else's is indistinguishable from missing.
pub async fn revoke(
    state: web::Data<AppState>,
    auth: Authenticated,
    path: web::Path<String>,
    Client(client): Client,
) -> ApiResult<HttpResponse> {
    let id = SessionId::parse(&path).ok_or(Error::NotFound("no such session"))?;
    state
        .services
        .ending
        .revoke_own_session(&id, &auth.claims, &client)
        .await?;
    Ok(HttpResponse::NoContent().finish())
}
