//! The contract's response bodies: token responses (with the refresh cookie in cookie mode),
//! users and sessions as the API shows them.

use actix_web::HttpResponse;
use actix_web::http::{StatusCode, header};
use secrecy::ExposeSecret;
use serde::Serialize;

use crate::clock;
use crate::domain::{Session, User};
use crate::domain::{SessionId, UserId};
use crate::http::cookies::RefreshCookie;
use crate::http::state::HttpSettings;
use crate::services::sessions::Issued;

#[derive(Serialize)]
pub struct UserView {
    pub id: UserId,
    pub email: Option<String>,
    pub is_guest: bool,
    pub email_verified: bool,
    pub created_at: String,
}

impl From<&User> for UserView {
    fn from(user: &User) -> Self {
        UserView {
            id: user.id.clone(),
            email: user.email.clone(),
            is_guest: user.is_guest,
            email_verified: user.email_verified,
            created_at: clock::rfc3339(user.created_at),
        }
    }
}

#[derive(Serialize)]
struct TokenResponse<'a> {
    access_token: &'a str,
    token_type: &'static str,
    expires_in: i64,
    expires_at: i64,
    /// Absent in cookie mode: the browser keeps it in an HttpOnly cookie instead.
    #[serde(skip_serializing_if = "Option::is_none")]
    refresh_token: Option<&'a str>,
    session_id: &'a str,
    user: UserView,
}

/// A response builder for anything carrying a token, ticket or token status: never cached.
pub fn no_store(status: StatusCode) -> actix_web::HttpResponseBuilder {
    let mut builder = HttpResponse::build(status);
    builder.insert_header((header::CACHE_CONTROL, "no-store"));
    builder
}

/// The token response: in cookie mode the refresh token goes in the cookie, not the body.
pub fn token_response(
    settings: &HttpSettings,
    status: StatusCode,
    issued: &Issued,
) -> HttpResponse {
    let mut response = no_store(status);
    response.insert_header((header::PRAGMA, "no-cache"));
    let cookies = &settings.cookies;
    let refresh_token = issued.refresh_token.expose_secret();
    if cookies.enabled {
        let max_age = settings.refresh_cookie_max_age_secs;
        response.cookie(cookies.refresh_cookie(refresh_token, max_age));
    }
    response.json(TokenResponse {
        access_token: &issued.access_token,
        token_type: "Bearer",
        expires_in: issued.expires_in,
        expires_at: issued.expires_at,
        refresh_token: (!cookies.enabled).then_some(refresh_token),
        session_id: &issued.session_id,
        user: UserView::from(&issued.user),
    })
}

#[derive(Serialize)]
pub struct SessionView {
    pub id: SessionId,
    pub kind: String,
    pub provider: Option<String>,
    pub created_at: String,
    pub last_seen_at: String,
    /// Unix seconds, as the contract gives every `expires_at`.
    pub expires_at: i64,
    pub user_agent: Option<String>,
    pub ip_address: Option<String>,
    pub current: bool,
}

impl SessionView {
    pub fn new(session: &Session, current_sid: &str) -> SessionView {
        SessionView {
            id: session.id.clone(),
            kind: session.kind.clone(),
            provider: session.provider.clone(),
            created_at: clock::rfc3339(session.created_at),
            last_seen_at: clock::rfc3339(session.last_seen_at),
            expires_at: session.expires_at,
            user_agent: session.user_agent.clone(),
            ip_address: session.ip_address.clone(),
            current: session.id == current_sid,
        }
    }

    /// A user's sessions as the API lists them.
    pub fn list(sessions: &[Session], current_sid: &str) -> Vec<SessionView> {
        sessions
            .iter()
            .map(|s| SessionView::new(s, current_sid))
            .collect()
    }
}
