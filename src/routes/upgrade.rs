//! `POST /v1/upgrade`: a guest becomes a permanent user in place: same user id, the calling
//! session now permanent, email and password set.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::json;

use crate::audit::Event;
use crate::clock;
use crate::error::{ApiError, ApiResult};
use crate::extract::{Authenticated, Json, SetsRefreshCookie};
use crate::issuance::{OpenedSession, SessionKind, opened_response};
use crate::state::AppState;
use crate::store::{GuestUpgrade, PresentedToken, UpgradeOutcome, UserRow};
use crate::tokens::opaque;

#[derive(Deserialize)]
pub struct UpgradeBody {
    email: String,
    password: SecretString,
    /// The guest's current refresh token (optional; in cookie mode the cookie is used). The
    /// upgrade spends it; presenting it lets a tab racing the upgrade converge on the new token.
    #[serde(default)]
    refresh_token: Option<SecretString>,
}

#[tracing::instrument(name = "upgrade", skip_all)]
pub async fn upgrade(
    state: web::Data<AppState>,
    req: HttpRequest,
    _browser: SetsRefreshCookie,
    auth: Authenticated,
    Json(body): Json<UpgradeBody>,
) -> ApiResult<HttpResponse> {
    state.credential_attempt(&req)?;
    let guest = &auth.snapshot.user;
    if guest.is_guest == 0 {
        return Err(ApiError::Forbidden("only a guest session can be upgraded"));
    }
    let (email, hash) = state.new_credentials(&body.email, body.password).await?;
    let now = clock::now();
    let session = &auth.snapshot.session;
    let refresh_token = opaque::generate();
    let presented = body
        .refresh_token
        .or_else(|| state.settings.cookies.read(&req));
    if presented
        .as_ref()
        .is_some_and(|t| !opaque::looks_valid(t.expose_secret()))
    {
        return Err(ApiError::InvalidRefreshToken);
    }
    let presented_hash = presented.as_ref().map(|t| opaque::hash(t.expose_secret()));
    let sealed = presented
        .as_ref()
        .map(|t| opaque::seal_successor(t, &refresh_token));
    let outcome = state
        .store
        .upgrade_guest(&GuestUpgrade {
            user_id: &guest.id,
            session_id: &session.id,
            email: email.as_str(),
            password_hash: &hash,
            session_expires_at: session.created_at + state.settings.sessions.permanent_ttl_secs,
            refresh_token_id: &uuid::Uuid::now_v7().to_string(),
            refresh_token_hash: &opaque::hash(refresh_token.expose_secret()),
            presented: presented_hash.as_deref().zip(sealed.as_deref()).map(
                |(hash, successor_sealed)| PresentedToken {
                    hash,
                    successor_sealed,
                },
            ),
            now,
        })
        .await?;
    match outcome {
        UpgradeOutcome::Upgraded => {}
        UpgradeOutcome::EmailTaken => return Err(ApiError::EmailTaken),
        UpgradeOutcome::ForeignRefreshToken => return Err(ApiError::InvalidRefreshToken),
        UpgradeOutcome::NotAGuest => {
            return Err(ApiError::Forbidden("only a guest session can be upgraded"));
        }
    }
    state.gate.changed(&session.id);
    let user = UserRow {
        email: Some(email.as_str().to_string()),
        is_guest: 0,
        ..guest.clone()
    };
    tracing::info!(user_id = %user.id, session_id = %session.id, "guest upgraded");
    let sid = Some(session.id.as_str());
    state
        .audit(Event::Upgrade, Some(&user.id), sid, &req, json!({}))
        .await;
    let opened = OpenedSession {
        session_id: session.id.clone(),
        refresh_token,
    };
    opened_response(
        &state,
        StatusCode::OK,
        &user,
        SessionKind::Password,
        &opened,
    )
}
