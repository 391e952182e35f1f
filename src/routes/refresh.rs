//! `POST /v1/token/refresh`: rotation with reuse detection and a grace window.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::json;

use crate::audit::Event;

use crate::clock;
use crate::error::{ApiError, ApiResult};
use crate::extract::{OptionalJson, SetsRefreshCookie};
use crate::issuance::token_response;
use crate::state::AppState;
use crate::store::{RefreshOutcome, RotationRequest, SessionRow, UserRow};
use crate::tokens::opaque;

#[derive(Deserialize)]
pub struct RefreshBody {
    refresh_token: Option<SecretString>,
}

#[tracing::instrument(name = "refresh", skip_all)]
pub async fn refresh(
    state: web::Data<AppState>,
    req: HttpRequest,
    _browser: SetsRefreshCookie,
    OptionalJson(body): OptionalJson<RefreshBody>,
) -> ApiResult<HttpResponse> {
    let presented = match body.and_then(|b| b.refresh_token) {
        Some(token) => token,
        None => {
            // `SetsRefreshCookie` has already applied the cookie-mode checks.
            state
                .settings
                .cookies
                .read(&req)
                .ok_or_else(|| ApiError::InvalidRequest("refresh_token is required".into()))?
        }
    };
    if !opaque::looks_valid(presented.expose_secret()) {
        return Err(ApiError::InvalidRefreshToken);
    }
    let successor = opaque::generate();
    let successor_id = uuid::Uuid::now_v7().to_string();
    let sessions = &state.settings.sessions;
    let request = RotationRequest {
        presented_hash: &opaque::hash(presented.expose_secret()),
        successor_id: &successor_id,
        successor_hash: &opaque::hash(successor.expose_secret()),
        successor_sealed: &opaque::seal_successor(&presented, &successor),
        now: clock::now(),
        grace_secs: sessions.refresh_grace_secs,
        idle_timeout_secs: sessions.idle_timeout_secs,
    };
    match state.store.rotate_refresh_token(&request).await? {
        RefreshOutcome::Rotated { session, user } => {
            state.gate.changed(&session.id);
            state.metrics.refreshes.inc();
            respond(&state, &session, &user, &successor)
        }
        RefreshOutcome::Replayed {
            session,
            user,
            sealed,
        } => {
            let same = opaque::unseal_successor(&presented, &sealed)
                .ok_or(ApiError::InvalidRefreshToken)?;
            state.metrics.refreshes.inc();
            respond(&state, &session, &user, &same)
        }
        RefreshOutcome::Reused {
            session_id,
            user_id,
        } => {
            tracing::warn!(%session_id, "refresh token reuse detected; session revoked");
            state.gate.ended(std::slice::from_ref(&session_id));
            state.metrics.reuse_detections.inc();
            let (user, sid) = (Some(user_id.as_str()), Some(session_id.as_str()));
            state
                .audit(Event::RefreshReuseDetected, user, sid, &req, json!({}))
                .await;
            Err(ApiError::RefreshTokenReused)
        }
        RefreshOutcome::Unknown | RefreshOutcome::Superseded => Err(ApiError::InvalidRefreshToken),
        RefreshOutcome::SessionRevoked => Err(ApiError::SessionRevoked),
        RefreshOutcome::SessionExpired => Err(ApiError::SessionExpired),
    }
}

fn respond(
    state: &AppState,
    session: &SessionRow,
    user: &UserRow,
    refresh_token: &SecretString,
) -> ApiResult<HttpResponse> {
    token_response(
        state,
        StatusCode::OK,
        user,
        &session.id,
        &session.amr,
        refresh_token,
    )
}
