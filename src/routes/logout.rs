//! `POST /v1/logout` with the scopes `local` (this session), `others` and `global`. The caller
//! is named by its access token, or in cookie mode by the refresh cookie (then with the CSRF
//! checks); in cookie mode the answer also expires the cookie.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::audit::Event;
use crate::clock;
use crate::cookies::check_cookie_request;
use crate::domain::RevokeReason;
use crate::error::{ApiError, ApiResult};
use crate::extract::{OptionalJson, bearer_token};
use crate::state::AppState;
use crate::tokens::opaque;

#[derive(Deserialize, Serialize, Default, Clone, Copy, PartialEq, Debug)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    #[default]
    Local,
    Others,
    Global,
}

#[derive(Deserialize)]
pub struct LogoutBody {
    #[serde(default)]
    scope: Scope,
}

#[tracing::instrument(name = "logout", skip_all)]
pub async fn logout(
    state: web::Data<AppState>,
    req: HttpRequest,
    OptionalJson(body): OptionalJson<LogoutBody>,
) -> ApiResult<HttpResponse> {
    let scope = body.map(|b| b.scope).unwrap_or_default();
    let now = clock::now();
    let (sid, sub) = caller(&state, &req, scope, now).await?;
    let store = &state.store;
    let reason = RevokeReason::Logout;
    let ended = match scope {
        Scope::Local => {
            let revoked = store.revoke_session(&sid, None, reason, now).await?;
            revoked.then(|| sid.clone()).into_iter().collect()
        }
        Scope::Others => {
            store
                .revoke_user_sessions(&sub, Some(&sid), reason, now)
                .await?
        }
        Scope::Global => store.revoke_user_sessions(&sub, None, reason, now).await?,
    };
    state.gate.ended(&ended);
    let revoked = ended.len();
    tracing::info!(user_id = %sub, session_id = %sid, ?scope, revoked, "logout");
    let detail = json!({ "scope": scope, "revoked": ended });
    let (user, session) = (Some(sub.as_str()), Some(sid.as_str()));
    state
        .audit(Event::Logout, user, session, &req, detail)
        .await;
    let mut response = HttpResponse::NoContent();
    let cookies = &state.settings.cookies;
    if cookies.enabled {
        response.cookie(cookies.clearing_cookie());
    }
    Ok(response.finish())
}

/// The (session id, user id) logging out: from the access token when there is one, else from
/// the refresh cookie.
///
/// Ending only the caller's own session needs just a valid signature, so repeating a logout is
/// still 204. Ending the user's other sessions is a power only a live session has: a token of a
/// session that already ended must not be able to sign its owner out everywhere. The cookie
/// names the caller only while it is the session's current, unspent refresh token.
async fn caller(
    state: &AppState,
    req: &HttpRequest,
    scope: Scope,
    now: i64,
) -> Result<(String, String), ApiError> {
    if req.headers().contains_key(header::AUTHORIZATION) || !state.settings.cookies.enabled {
        let claims = state.tokens.verify(bearer_token(req)?).await?;
        if scope != Scope::Local {
            state.gate.live(&claims.sid, &claims.sub, now).await?;
        }
        return Ok((claims.sid.clone(), claims.sub.clone()));
    }
    let cookie = state
        .settings
        .cookies
        .read(req)
        .ok_or(ApiError::InvalidToken(
            "an access token or the session cookie is required",
        ))?;
    check_cookie_request(req, &state.settings)?;
    let (sid, sub) = state
        .store
        .session_of_unspent_refresh_token(&opaque::hash(cookie.expose_secret()))
        .await?
        .ok_or(ApiError::InvalidToken("the session cookie is not valid"))?;
    state.gate.live(&sid, &sub, now).await?;
    Ok((sid, sub))
}
