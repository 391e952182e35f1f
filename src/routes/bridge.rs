//! `POST /v1/bridge`: exchange a verified third-party token for a local session.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::json;

use crate::audit::Event;
use crate::bridge::VerifiedIdentity;
use crate::clock;
use crate::domain::Email;
use crate::error::{ApiError, ApiResult};
use crate::extract::{Json, SetsRefreshCookie};
use crate::issuance::{SessionKind, open_session, opened_response};
use crate::state::AppState;
use crate::store::{Store, UserRow};

#[derive(Deserialize)]
pub struct BridgeBody {
    provider: String,
    token: SecretString,
}

#[tracing::instrument(name = "bridge", skip_all, fields(provider = %body.provider))]
pub async fn bridge(
    state: web::Data<AppState>,
    req: HttpRequest,
    _browser: SetsRefreshCookie,
    Json(body): Json<BridgeBody>,
) -> ApiResult<HttpResponse> {
    let client = state.credential_attempt(&req)?;
    let identity = state
        .bridge
        .verify(&body.provider, body.token.expose_secret())
        .await?;
    let user = local_user(&state, &identity).await?;
    let kind = SessionKind::Bridge(&identity.provider);
    let mut tx = state.store.begin().await?;
    if !Store::lock_enabled_user(&mut tx, &user.id).await? {
        tracing::info!(user_id = %user.id, "bridge refused: the user is disabled");
        let detail = json!({ "provider": identity.provider, "disabled": true });
        drop(tx);
        state
            .audit(Event::BridgeRefused, Some(&user.id), None, &req, detail)
            .await;
        return Err(ApiError::Forbidden("this account is disabled"));
    }
    let opened = open_session(&mut tx, &state, &user.id, kind, &client, clock::now()).await?;
    tx.commit().await?;
    tracing::info!(user_id = %user.id, session_id = %opened.session_id, "bridged session");
    let detail = json!({ "provider": identity.provider, "issuer": identity.issuer });
    let sid = Some(opened.session_id.as_str());
    state
        .audit(Event::Bridge, Some(&user.id), sid, &req, detail)
        .await;
    opened_response(&state, StatusCode::OK, &user, kind, &opened)
}

/// The user linked to (issuer, sub), created on first use.
async fn local_user(state: &AppState, identity: &VerifiedIdentity) -> ApiResult<UserRow> {
    let store = &state.store;
    // Two first uses at once: one creates, the other finds it on the next pass.
    for _ in 0..3 {
        if let Some(user) = store
            .find_bridged_user(&identity.issuer, &identity.subject)
            .await?
        {
            return Ok(user);
        }
        let now = clock::now();
        let user = UserRow {
            id: uuid::Uuid::now_v7().to_string(),
            email: identity
                .email
                .as_deref()
                .and_then(|e| Email::parse(e).ok())
                .map(|e| e.as_str().to_string()),
            is_guest: 0,
            created_at: now,
        };
        let (issuer, subject) = (&identity.issuer, &identity.subject);
        if store
            .create_bridged_user(&user, issuer, subject, &identity.provider, now)
            .await?
        {
            return Ok(store.find_user(&user.id).await?.unwrap_or(user));
        }
    }
    Err(ApiError::Internal(anyhow::anyhow!(
        "could not link a bridged identity"
    )))
}
