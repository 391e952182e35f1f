//! One-time WebSocket tickets (see `services::tickets`): issued to a Bearer-authenticated
//! browser, redeemed once by a socket server holding a service key.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::json;

use crate::domain::Scope;
use crate::domain::assurance;
use crate::http::error::{ApiError, ApiResult};
use crate::http::extract::{Authenticated, Json, ServiceClient};
use crate::http::routes::introspect::inactive;
use crate::http::state::AppState;
use crate::http::views::no_store;
use crate::services::tickets::TICKET_TTL_SECS;

pub async fn issue(state: web::Data<AppState>, auth: Authenticated) -> ApiResult<HttpResponse> {
    let ticket = state
        .services
        .tickets
        .issue_ticket(&auth.claims.sid)
        .await?;
    Ok(no_store(StatusCode::CREATED)
        .json(json!({ "ticket": ticket.expose_secret(), "expires_in": TICKET_TTL_SECS })))
}

#[derive(Deserialize)]
pub struct RedeemBody {
    ticket: Option<SecretString>,
}

pub async fn redeem(
    state: web::Data<AppState>,
    client: ServiceClient,
    Json(body): Json<RedeemBody>,
) -> ApiResult<HttpResponse> {
    client.require(Scope::Introspect)?;
    let ticket = body
        .ticket
        .ok_or_else(|| ApiError::InvalidRequest("the ticket parameter is required".into()))?;
    let Some(snapshot) = state.services.tickets.redeem_ticket(&ticket).await? else {
        return Ok(inactive());
    };
    let user = &snapshot.user;
    Ok(no_store(StatusCode::OK).json(json!({
        "active": true,
        "sub": user.id,
        "sid": snapshot.session.id,
        "is_guest": user.is_guest,
        "email": user.email,
        // What the socket server needs to ask for a recent or two-factor authentication.
        "auth_time": snapshot.session.auth_time,
        "amr": snapshot.session.amr,
        "acr": assurance::acr(&snapshot.session.amr),
    })))
}
