//! `POST /v1/password`: change the password, then end every other session of the user.

use actix_web::{HttpResponse, web};
use secrecy::SecretString;
use serde::Deserialize;

use crate::http::error::ApiResult;
use crate::http::extract::{Authenticated, Client, Json};
use crate::http::state::AppState;

#[derive(Deserialize)]
pub struct ChangePassword {
    current_password: SecretString,
    new_password: SecretString,
}

pub async fn change(
    state: web::Data<AppState>,
    auth: Authenticated,
    Client(client): Client,
    Json(body): Json<ChangePassword>,
) -> ApiResult<HttpResponse> {
    let claims = &auth.claims;
    state.services.recovery.require_fresh(claims)?;
    state
        .services
        .accounts
        .change_password(
            &claims.sub,
            &claims.sid,
            claims.email.as_deref(),
            &body.current_password,
            body.new_password,
            &client,
        )
        .await?;
    Ok(HttpResponse::NoContent().finish())
}
