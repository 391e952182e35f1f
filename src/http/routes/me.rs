//! `GET /v1/me`: the caller's user and current session.

use actix_web::HttpResponse;
use serde_json::json;

use crate::http::extract::Authenticated;
use crate::http::views::{SessionView, UserView};

/// Answered from the session gate's snapshot: no database round trip in the steady state.
pub async fn me(auth: Authenticated) -> HttpResponse {
    let snapshot = &auth.snapshot;
    HttpResponse::Ok().json(json!({
        "user": UserView::from(&snapshot.user),
        "session": SessionView::new(&snapshot.session, &auth.claims.sid),
    }))
}
