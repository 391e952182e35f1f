//! `GET /v1/me`: the caller's user and current session.

use actix_web::{HttpResponse, web};
use serde_json::json;

use crate::http::error::ApiResult;
use crate::http::extract::Authenticated;
use crate::http::state::AppState;
use crate::http::views::{SessionView, UserView};

/// The token is validated from memory; the body shows the stored user and session (their
/// `last_seen_at`, user agent, email), read through the gate's bounded snapshot cache.
pub async fn me(state: web::Data<AppState>, auth: Authenticated) -> ApiResult<HttpResponse> {
    let claims = &auth.claims;
    let snapshot = state
        .services
        .validation
        .live_session(&claims.sid, &claims.sub)
        .await?;
    Ok(HttpResponse::Ok().json(json!({
        "user": UserView::from(&snapshot.user),
        "session": SessionView::new(&snapshot.session, &claims.sid),
    })))
}
