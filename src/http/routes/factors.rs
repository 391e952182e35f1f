//! Second factors (`../shared/API.md`, "Second factors, passkeys and step-up"): a TOTP
//! authenticator (enroll, confirm, disable) and completing a login that answered
//! `mfa_required`.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::json;

use crate::http::error::{ApiError, ApiResult};
use crate::http::extract::{Authenticated, Client, Json, SetsRefreshCookie};
use crate::http::state::AppState;
use crate::http::views::{no_store, token_response};
use crate::services::factors::SecondFactor;

pub async fn enroll_totp(
    state: web::Data<AppState>,
    auth: Authenticated,
    Client(client): Client,
) -> ApiResult<HttpResponse> {
    let services = &state.services;
    let claims = &auth.claims;
    let snapshot = services
        .validation
        .live_session(&claims.sid, &claims.sub)
        .await?;
    let enrollment = services
        .factors
        .enroll_totp(claims, &snapshot.user, &client)
        .await?;
    Ok(no_store(StatusCode::CREATED).json(json!({
        "secret": enrollment.secret.expose_secret(),
        "otpauth_uri": enrollment.otpauth_uri.expose_secret(),
    })))
}

#[derive(Deserialize)]
pub struct CodeBody {
    code: SecretString,
}

pub async fn confirm_totp(
    state: web::Data<AppState>,
    auth: Authenticated,
    Client(client): Client,
    Json(body): Json<CodeBody>,
) -> ApiResult<HttpResponse> {
    let services = &state.services;
    let claims = &auth.claims;
    let snapshot = services
        .validation
        .live_session(&claims.sid, &claims.sub)
        .await?;
    let codes = services
        .factors
        .confirm_totp(&snapshot.user, claims.sid.as_str(), &body.code, &client)
        .await?;
    let codes: Vec<&str> = codes.iter().map(|c| c.expose_secret()).collect();
    Ok(no_store(StatusCode::OK).json(json!({ "recovery_codes": codes })))
}

pub async fn disable_totp(
    state: web::Data<AppState>,
    auth: Authenticated,
    Client(client): Client,
) -> ApiResult<HttpResponse> {
    state
        .services
        .factors
        .disable_totp(&auth.claims, &client)
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// A second factor as a request body carries it: exactly one of `code`, `recovery_code`.
#[derive(Deserialize)]
pub struct FactorFields {
    #[serde(default)]
    pub code: Option<SecretString>,
    #[serde(default)]
    pub recovery_code: Option<SecretString>,
}

impl FactorFields {
    /// The factor, if the body names one (and only one).
    pub fn factor(self) -> ApiResult<Option<SecondFactor>> {
        match (self.code, self.recovery_code) {
            (Some(code), None) => Ok(Some(SecondFactor::Code(code))),
            (None, Some(code)) => Ok(Some(SecondFactor::RecoveryCode(code))),
            (None, None) => Ok(None),
            (Some(_), Some(_)) => Err(ApiError::InvalidRequest(
                "send either code or recovery_code, not both".into(),
            )),
        }
    }
}

#[derive(Deserialize)]
pub struct MfaLoginBody {
    mfa_token: SecretString,
    #[serde(flatten)]
    factor: FactorFields,
}

pub async fn login_mfa(
    state: web::Data<AppState>,
    Client(client): Client,
    _browser: SetsRefreshCookie,
    Json(body): Json<MfaLoginBody>,
) -> ApiResult<HttpResponse> {
    let Some(factor) = body.factor.factor()? else {
        return Err(ApiError::InvalidRequest(
            "code or recovery_code is required".into(),
        ));
    };
    let issued = state
        .services
        .factors
        .complete_login(&body.mfa_token, factor, &client)
        .await?;
    Ok(token_response(&state.settings, StatusCode::OK, &issued))
}
