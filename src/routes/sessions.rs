//! `GET /v1/sessions` and `DELETE /v1/sessions/{id}`: a user's devices.

use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::json;

use crate::audit::Event;
use crate::clock;
use crate::domain::RevokeReason;
use crate::error::{ApiError, ApiResult};
use crate::extract::Authenticated;
use crate::issuance::SessionView;
use crate::state::AppState;

pub async fn list(state: web::Data<AppState>, auth: Authenticated) -> ApiResult<HttpResponse> {
    let idle = state.settings.sessions.idle_timeout_secs;
    let rows = state
        .store
        .list_live_sessions(&auth.claims.sub, clock::now(), idle)
        .await?;
    let sessions: Vec<SessionView> = rows
        .iter()
        .map(|s| SessionView::new(s, &auth.claims.sid))
        .collect();
    Ok(HttpResponse::Ok().json(json!({ "sessions": sessions })))
}

/// Revokes one of the caller's own sessions; anyone else's is indistinguishable from missing.
pub async fn revoke(
    state: web::Data<AppState>,
    auth: Authenticated,
    path: web::Path<String>,
    req: HttpRequest,
) -> ApiResult<HttpResponse> {
    let id = path.into_inner();
    let revoked = state
        .store
        .revoke_session(
            &id,
            Some(&auth.claims.sub),
            RevokeReason::Revoked,
            clock::now(),
        )
        .await?;
    if !revoked {
        return Err(ApiError::NotFound("no such session"));
    }
    state.gate.ended(std::slice::from_ref(&id));
    tracing::info!(user_id = %auth.claims.sub, session_id = %id, "session revoked by its owner");
    let detail = json!({ "by_session": auth.claims.sid });
    state
        .audit(
            Event::SessionRevoked,
            Some(&auth.claims.sub),
            Some(&id),
            &req,
            detail,
        )
        .await;
    Ok(HttpResponse::NoContent().finish())
}
