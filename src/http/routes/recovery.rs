//! Verified email, recovery and sign-in by email (`../shared/API.md`, "Accounts"), deleting
//! one's own account, and re-authentication. Requests that mail something answer 202 with the
//! same body whatever happened (an unknown address, a send limit).

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use secrecy::SecretString;
use serde::Deserialize;
use serde_json::json;

use crate::error::Error;
use crate::http::cookies::RefreshCookie;
use crate::http::error::{ApiError, ApiResult};
use crate::http::extract::{Authenticated, Client, Json, SetsRefreshCookie};
use crate::http::routes::factors::FactorFields;
use crate::http::state::AppState;
use crate::http::views::{UserView, token_response};
use crate::services::recovery::MailKind;
use crate::services::recovery::{ReauthProof, SignInProof};

fn accepted() -> HttpResponse {
    HttpResponse::Accepted()
        .insert_header(("Cache-Control", "no-store"))
        .json(json!({ "accepted": true }))
}

fn user_response(user: &crate::domain::User) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header(("Cache-Control", "no-store"))
        .json(json!({ "user": UserView::from(user) }))
}

#[derive(Deserialize)]
pub struct TokenBody {
    token: SecretString,
}

#[derive(Deserialize)]
pub struct EmailBody {
    email: String,
}

pub async fn send_verification(
    state: web::Data<AppState>,
    auth: Authenticated,
    Client(client): Client,
) -> ApiResult<HttpResponse> {
    let claims = &auth.claims;
    let services = &state.services;
    let snapshot = services
        .validation
        .live_session(&claims.sid, &claims.sub)
        .await?;
    services
        .recovery
        .send_verification(&snapshot.user, &client)
        .await?;
    Ok(accepted())
}

pub async fn verify_email(
    state: web::Data<AppState>,
    Client(client): Client,
    Json(body): Json<TokenBody>,
) -> ApiResult<HttpResponse> {
    let user = state
        .services
        .recovery
        .verify_email(&body.token, &client)
        .await?;
    Ok(user_response(&user))
}

pub async fn forgot_password(
    state: web::Data<AppState>,
    Client(client): Client,
    Json(body): Json<EmailBody>,
) -> ApiResult<HttpResponse> {
    state
        .services
        .recovery
        .request_mail(MailKind::ResetPassword, &body.email, &client)
        .await?;
    Ok(accepted())
}

#[derive(Deserialize)]
pub struct ResetBody {
    token: SecretString,
    new_password: SecretString,
}

pub async fn reset_password(
    state: web::Data<AppState>,
    Client(client): Client,
    _browser: SetsRefreshCookie,
    Json(body): Json<ResetBody>,
) -> ApiResult<HttpResponse> {
    let issued = state
        .services
        .recovery
        .reset_password(&body.token, body.new_password, &client)
        .await?;
    Ok(token_response(&state.settings, StatusCode::OK, &issued))
}

pub async fn request_sign_in(
    state: web::Data<AppState>,
    Client(client): Client,
    Json(body): Json<EmailBody>,
) -> ApiResult<HttpResponse> {
    state
        .services
        .recovery
        .request_mail(MailKind::SignIn, &body.email, &client)
        .await?;
    Ok(accepted())
}

#[derive(Deserialize)]
pub struct SignInBody {
    #[serde(default)]
    token: Option<SecretString>,
    #[serde(default)]
    email: Option<String>,
    #[serde(default)]
    code: Option<String>,
}

pub async fn verify_sign_in(
    state: web::Data<AppState>,
    Client(client): Client,
    _browser: SetsRefreshCookie,
    Json(body): Json<SignInBody>,
) -> ApiResult<HttpResponse> {
    let proof = match (&body.token, &body.email, &body.code) {
        (Some(token), None, None) => SignInProof::Token(token),
        (None, Some(email), Some(code)) => SignInProof::Code { email, code },
        _ => {
            return Err(ApiError::InvalidRequest(
                "send either {token} or {email, code}".into(),
            ));
        }
    };
    let issued = state
        .services
        .recovery
        .verify_sign_in(proof, &client)
        .await?;
    Ok(token_response(&state.settings, StatusCode::OK, &issued))
}

#[derive(Deserialize)]
pub struct ChangeEmailBody {
    new_email: String,
}

pub async fn change_email(
    state: web::Data<AppState>,
    auth: Authenticated,
    Client(client): Client,
    Json(body): Json<ChangeEmailBody>,
) -> ApiResult<HttpResponse> {
    let claims = &auth.claims;
    let services = &state.services;
    let snapshot = services
        .validation
        .live_session(&claims.sid, &claims.sub)
        .await?;
    services
        .recovery
        .change_email(claims, &snapshot.user, &body.new_email, &client)
        .await?;
    Ok(accepted())
}

pub async fn confirm_email_change(
    state: web::Data<AppState>,
    Client(client): Client,
    Json(body): Json<TokenBody>,
) -> ApiResult<HttpResponse> {
    let user = state
        .services
        .recovery
        .confirm_email_change(&body.token, &client)
        .await?;
    Ok(user_response(&user))
}

pub async fn delete_me(
    state: web::Data<AppState>,
    auth: Authenticated,
    Client(client): Client,
) -> ApiResult<HttpResponse> {
    state
        .services
        .recovery
        .delete_self(&auth.claims, &client)
        .await?;
    let mut response = HttpResponse::NoContent();
    let cookies = &state.settings.cookies;
    // The refresh cookie names a session that no longer exists.
    if cookies.enabled {
        response.cookie(cookies.clearing_cookie());
    }
    Ok(response.finish())
}

#[derive(Deserialize)]
pub struct ReauthBody {
    #[serde(default)]
    password: Option<SecretString>,
    #[serde(flatten)]
    factor: FactorFields,
    /// A passkey assertion for a challenge from `POST /v1/login/passkey/start`.
    #[serde(default)]
    challenge_id: Option<String>,
    #[serde(default)]
    credential: Option<serde_json::Value>,
    /// The session's current refresh token (optional; in cookie mode the cookie is used):
    /// re-authentication gives the session a new one.
    #[serde(default)]
    refresh_token: Option<SecretString>,
}

pub async fn reauth(
    state: web::Data<AppState>,
    req: HttpRequest,
    auth: Authenticated,
    Client(client): Client,
    _browser: SetsRefreshCookie,
    Json(body): Json<ReauthBody>,
) -> ApiResult<HttpResponse> {
    let passkey = match (body.challenge_id, body.credential) {
        (Some(challenge_id), Some(credential)) => Some(ReauthProof::Passkey {
            challenge_id,
            credential,
        }),
        (None, None) => None,
        _ => {
            return Err(ApiError::InvalidRequest(
                "a passkey needs both challenge_id and credential".into(),
            ));
        }
    };
    let password = body.password.map(ReauthProof::Password);
    let factor = body.factor.factor()?.map(ReauthProof::Factor);
    let mut proofs = [password, factor, passkey].into_iter().flatten();
    let (Some(proof), None) = (proofs.next(), proofs.next()) else {
        return Err(ApiError::InvalidRequest(
            "send one method: password, code, recovery_code, or challenge_id with credential"
                .into(),
        ));
    };
    let presented = body
        .refresh_token
        .or_else(|| state.settings.cookies.read(&req));
    let issued = state
        .services
        .recovery
        .reauthenticate(&auth.claims, proof, presented, &client)
        .await
        .map_err(|error| match error {
            // The session's refresh chain moved or the session ended meanwhile.
            Error::InvalidRefreshToken => Error::InvalidToken("the session is no longer live"),
            other => other,
        })?;
    Ok(token_response(&state.settings, StatusCode::OK, &issued))
}
