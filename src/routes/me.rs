//! `GET /v1/me`: the caller's user and current session.

use actix_web::{HttpResponse, web};
use serde_json::json;

use crate::error::{ApiError, ApiResult};
use crate::extract::Authenticated;
use crate::issuance::{SessionView, UserView};
use crate::state::AppState;

pub async fn me(state: web::Data<AppState>, auth: Authenticated) -> ApiResult<HttpResponse> {
    let user = state
        .store
        .find_user(&auth.claims.sub)
        .await?
        .ok_or(ApiError::InvalidToken("the session has ended"))?;
    Ok(HttpResponse::Ok().json(json!({
        "user": UserView::from(&user),
        "session": SessionView::new(&auth.session, &auth.claims.sid),
    })))
}
