//! `POST /v1/revoke` (RFC 7009): whoever holds a token may revoke it, which ends its session.
//! The answer is 200 whether or not the token was known, so it reveals nothing.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::json;

use crate::audit::Event;
use crate::domain::RevokeReason;

use crate::clock;
use crate::error::{ApiError, ApiResult};
use crate::extract::JsonOrForm;
use crate::issuance::no_store;
use crate::state::AppState;
use crate::tokens::opaque;

#[derive(Deserialize)]
pub struct RevokeBody {
    token: Option<SecretString>,
    #[serde(default)]
    #[allow(dead_code)] // accepted per RFC 7009; both kinds are recognized by shape
    token_type_hint: Option<String>,
}

#[tracing::instrument(name = "revoke", skip_all)]
pub async fn revoke(
    state: web::Data<AppState>,
    req: HttpRequest,
    JsonOrForm(body): JsonOrForm<RevokeBody>,
) -> ApiResult<HttpResponse> {
    let token = body
        .token
        .ok_or_else(|| ApiError::InvalidRequest("the token parameter is required".into()))?;
    let token = token.expose_secret();
    let owner = if opaque::looks_valid(token) {
        state
            .store
            .session_of_refresh_token(&opaque::hash(token))
            .await?
    } else {
        let claims = state.tokens.verify(token).await.ok();
        claims.map(|claims| (claims.sid.clone(), claims.sub.clone()))
    };
    if let Some((session_id, user_id)) = owner {
        let revoked = state
            .store
            .revoke_session(&session_id, None, RevokeReason::TokenRevoked, clock::now())
            .await?;
        if revoked {
            state.gate.ended(std::slice::from_ref(&session_id));
            let (user, sid) = (Some(user_id.as_str()), Some(session_id.as_str()));
            state
                .audit(Event::TokenRevoked, user, sid, &req, json!({}))
                .await;
        }
        tracing::info!(%session_id, revoked, "token revoked");
    }
    Ok(no_store(StatusCode::OK).finish())
}
