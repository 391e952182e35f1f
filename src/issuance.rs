//! Opening sessions and answering with the contract's token response. Signup, login, guest and
//! refresh all end here, so every token response has the same shape and headers.

use actix_web::HttpResponse;
use actix_web::http::{StatusCode, header};
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;
use sqlx::{Any, Transaction};

use crate::clock;
use crate::error::ApiResult;
use crate::extract::ClientInfo;
use crate::state::AppState;
use crate::store::{NewSession, SessionRow, Store, StoreResult, UserRow};
use crate::tokens::access::Subject;
use crate::tokens::opaque;

/// How a session was opened; decides its lifetime, its `amr` and its provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionKind<'a> {
    Password,
    Guest,
    /// Through the session bridge, from the named provider.
    Bridge(&'a str),
}

impl SessionKind<'_> {
    pub fn as_str(self) -> &'static str {
        match self {
            SessionKind::Password => "password",
            SessionKind::Guest => "guest",
            SessionKind::Bridge(_) => "bridge",
        }
    }

    /// The `amr` claim, as the JSON array stored with the session.
    fn amr(self) -> String {
        let method = match self {
            SessionKind::Password => "pwd".to_string(),
            SessionKind::Guest => "guest".to_string(),
            SessionKind::Bridge(provider) => format!("bridge:{provider}"),
        };
        serde_json::json!([method]).to_string()
    }
}

/// A session row written but not yet answered: its id and first refresh token.
pub struct OpenedSession {
    pub session_id: String,
    pub refresh_token: SecretString,
}

/// Writes a session and its first refresh token inside the caller's transaction.
pub async fn open_session(
    tx: &mut Transaction<'static, Any>,
    state: &AppState,
    user_id: &str,
    kind: SessionKind<'_>,
    client: &ClientInfo,
    now: i64,
) -> StoreResult<OpenedSession> {
    let lifetimes = &state.settings.sessions;
    let ttl = match kind {
        SessionKind::Guest => lifetimes.guest_ttl_secs,
        SessionKind::Password | SessionKind::Bridge(_) => lifetimes.permanent_ttl_secs,
    };
    let provider = match kind {
        SessionKind::Bridge(provider) => Some(provider),
        _ => None,
    };
    let amr = kind.amr();
    let session_id = uuid::Uuid::now_v7().to_string();
    Store::insert_session(
        tx,
        &NewSession {
            id: &session_id,
            user_id,
            kind: kind.as_str(),
            provider,
            amr: &amr,
            user_agent: client.user_agent.as_deref(),
            ip_address: client.ip_address.as_deref(),
            now,
            expires_at: now + ttl,
        },
    )
    .await?;
    let refresh_token = opaque::generate();
    let token_id = uuid::Uuid::now_v7().to_string();
    let hash = opaque::hash(refresh_token.expose_secret());
    Store::insert_refresh_token(tx, &token_id, &session_id, &hash, None, now).await?;
    Ok(OpenedSession {
        session_id,
        refresh_token,
    })
}

#[derive(Serialize)]
pub struct UserView {
    pub id: String,
    pub email: Option<String>,
    pub is_guest: bool,
    pub created_at: String,
}

impl From<&UserRow> for UserView {
    fn from(user: &UserRow) -> Self {
        UserView {
            id: user.id.clone(),
            email: user.email.clone(),
            is_guest: user.is_guest != 0,
            created_at: clock::rfc3339(user.created_at),
        }
    }
}

#[derive(Serialize)]
struct TokenResponse<'a> {
    access_token: String,
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

/// Mints an access token for `session` and renders the token response.
pub fn token_response(
    state: &AppState,
    status: StatusCode,
    user: &UserRow,
    session_id: &str,
    amr_json: &str,
    refresh_token: &SecretString,
) -> ApiResult<HttpResponse> {
    let now = clock::now();
    let amr: Vec<String> = serde_json::from_str(amr_json).unwrap_or_default();
    let (access_token, expires_at) = state.tokens.issue(
        Subject {
            user_id: &user.id,
            session_id,
            is_guest: user.is_guest != 0,
            amr,
            email: user.email.as_deref(),
        },
        now,
    )?;
    let mut response = no_store(status);
    response.insert_header((header::PRAGMA, "no-cache"));
    let cookies = &state.settings.cookies;
    if cookies.enabled {
        let max_age = state.settings.sessions.permanent_ttl_secs;
        response.cookie(cookies.refresh_cookie(refresh_token.expose_secret(), max_age));
    }
    Ok(response.json(TokenResponse {
        access_token,
        token_type: "Bearer",
        expires_in: expires_at - now,
        expires_at,
        refresh_token: (!cookies.enabled).then(|| refresh_token.expose_secret()),
        session_id,
        user: UserView::from(user),
    }))
}

/// The token response for a session that was just opened by `kind` (and committed).
pub fn opened_response(
    state: &AppState,
    status: StatusCode,
    user: &UserRow,
    kind: SessionKind<'_>,
    opened: &OpenedSession,
) -> ApiResult<HttpResponse> {
    // Its session.created event is committed: the feed need not wait for its next poll.
    state.events.waker().notify_one();
    token_response(
        state,
        status,
        user,
        &opened.session_id,
        &kind.amr(),
        &opened.refresh_token,
    )
}

#[derive(Serialize)]
pub struct SessionView {
    pub id: String,
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
    pub fn new(session: &SessionRow, current_sid: &str) -> SessionView {
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
}
