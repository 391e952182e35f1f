//! `POST /v1/password`: change the password, then end every other session of the user.

use actix_web::{HttpRequest, HttpResponse, web};
use secrecy::SecretString;
use serde::Deserialize;
use serde_json::json;

use crate::audit::Event;

use crate::clock;
use crate::domain::{Password, PasswordPolicy};
use crate::error::{ApiError, ApiResult};
use crate::extract::{Authenticated, Json};
use crate::state::AppState;

#[derive(Deserialize)]
pub struct ChangePassword {
    current_password: SecretString,
    new_password: SecretString,
}

#[tracing::instrument(name = "change_password", skip_all)]
pub async fn change(
    state: web::Data<AppState>,
    auth: Authenticated,
    req: HttpRequest,
    Json(body): Json<ChangePassword>,
) -> ApiResult<HttpResponse> {
    state.credential_attempt(&req)?;
    let user_id = &auth.claims.sub;
    let stored = state.store.password_hash(user_id).await?;
    // A guest has no password to confirm: the dummy hash keeps the timing uniform.
    let verified_hash = stored.clone();
    if !state.hasher.verify(&body.current_password, stored).await? {
        return Err(ApiError::InvalidCredentials);
    }
    let verified_hash = verified_hash.ok_or(ApiError::InvalidCredentials)?;
    let policy = PasswordPolicy {
        min_strength: state.settings.passwords.min_strength,
    };
    let context: Vec<&str> = auth.claims.email.as_deref().into_iter().collect();
    let new_password = Password::parse(body.new_password, policy, &context)?;
    let hash = state.hasher.hash(new_password.secret()).await?;
    let now = clock::now();
    let ended = state
        .store
        .change_password(user_id, &verified_hash, &hash, &auth.claims.sid, now)
        .await?
        // Another change committed since we verified: the current password is not this one.
        .ok_or(ApiError::InvalidCredentials)?;
    state.gate.ended(&ended);
    tracing::info!(%user_id, revoked = ended.len(), "password changed");
    let detail = json!({ "revoked": ended });
    let sid = Some(auth.claims.sid.as_str());
    state
        .audit(Event::PasswordChanged, Some(user_id), sid, &req, detail)
        .await;
    Ok(HttpResponse::NoContent().finish())
}
