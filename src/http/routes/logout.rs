//! `POST /v1/logout` with the scopes `local` (this session), `others` and `global`. The caller
//! is named by its access token, or in cookie mode by the refresh cookie (then with the CSRF
//! checks); in cookie mode the answer also expires the cookie.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;

use crate::domain::{SessionId, UserId};
use crate::error::Error;
use crate::http::cookies::{RefreshCookie, check_cookie_request};
use crate::http::error::{ApiError, ApiResult};
use crate::http::extract::{Client, OptionalJson, bearer_token};
use crate::http::state::AppState;
use crate::services::ending::LogoutScope;

#[derive(Deserialize)]
pub struct LogoutBody {
    #[serde(default)]
    scope: LogoutScope,
}

pub async fn logout(
    state: web::Data<AppState>,
    req: HttpRequest,
    Client(client): Client,
    OptionalJson(body): OptionalJson<LogoutBody>,
) -> ApiResult<HttpResponse> {
    let scope = body.map(|b| b.scope).unwrap_or_default();
    let (sid, sub) = caller(&state, &req, scope).await?;
    state
        .services
        .ending
        .logout(&sid, &sub, scope, &client)
        .await?;
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
    scope: LogoutScope,
) -> Result<(SessionId, UserId), ApiError> {
    let services = &state.services;
    let settings = &state.settings;
    if req.headers().contains_key(header::AUTHORIZATION) || !settings.cookies.enabled {
        let claims = services.validation.verify_token(bearer_token(req)?).await?;
        if scope != LogoutScope::Local {
            services.validation.token_session_live(&claims).await?;
        }
        return Ok((claims.sid.clone(), claims.sub.clone()));
    }
    let cookie = settings.cookies.read(req).ok_or(Error::InvalidToken(
        "an access token or the session cookie is required",
    ))?;
    check_cookie_request(req, settings)?;
    Ok(services.validation.session_of_cookie(&cookie).await?)
}
