//! One-time WebSocket tickets. A browser cannot set headers on a WebSocket handshake, so it
//! asks for a ticket (Bearer) and puts it in the handshake; the socket server redeems it once
//! (service key). Tickets are 128+ random bits (we use 256), stored hashed, live 30 seconds.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::json;

use crate::clock;
use crate::error::{ApiError, ApiResult};
use crate::extract::{Authenticated, Json, ServiceClient};
use crate::issuance::no_store;
use crate::routes::introspect::inactive;
use crate::service_keys::Scope;
use crate::state::AppState;
use crate::tokens::opaque;

pub const TICKET_TTL_SECS: i64 = 30;

pub async fn issue(state: web::Data<AppState>, auth: Authenticated) -> ApiResult<HttpResponse> {
    let ticket = opaque::generate();
    let now = clock::now();
    state
        .store
        .insert_ws_ticket(
            &uuid::Uuid::now_v7().to_string(),
            &opaque::hash(ticket.expose_secret()),
            &auth.claims.sid,
            now,
            now + TICKET_TTL_SECS,
        )
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
    if !opaque::looks_valid(ticket.expose_secret()) {
        return Ok(inactive());
    }
    let now = clock::now();
    let redeemed = state
        .store
        .redeem_ws_ticket(&opaque::hash(ticket.expose_secret()), now)
        .await?;
    let Some(session_id) = redeemed else {
        return Ok(inactive());
    };
    let Some(snapshot) = state.gate.snapshot(&session_id, now).await? else {
        return Ok(inactive());
    };
    let user = &snapshot.user;
    Ok(no_store(StatusCode::OK).json(json!({
        "active": true,
        "sub": user.id,
        "sid": session_id,
        "is_guest": user.is_guest != 0,
        "email": user.email,
    })))
}
