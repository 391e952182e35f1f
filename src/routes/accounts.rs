//! Signup, login and guest sessions: the three ways to open a session locally.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use secrecy::SecretString;
use serde::Deserialize;
use serde_json::json;

use crate::audit::Event;

use crate::clock;
use crate::domain::Email;
use crate::error::{ApiError, ApiResult};
use crate::extract::{ClientInfo, Json, OptionalJson, SetsRefreshCookie};
use crate::issuance::{SessionKind, open_session, opened_response};
use crate::state::AppState;
use crate::store::{NewUser, Store, UserRow};
use crate::throttle::Verdict;

#[derive(Deserialize)]
pub struct Credentials {
    email: String,
    password: SecretString,
}

#[tracing::instrument(name = "signup", skip_all)]
pub async fn signup(
    state: web::Data<AppState>,
    req: HttpRequest,
    _browser: SetsRefreshCookie,
    Json(body): Json<Credentials>,
) -> ApiResult<HttpResponse> {
    let client = state.credential_attempt(&req)?;
    let (email, hash) = state.new_credentials(&body.email, body.password).await?;
    let now = clock::now();
    let user = UserRow {
        id: uuid::Uuid::now_v7().to_string(),
        email: Some(email.as_str().to_string()),
        is_guest: 0,
        created_at: now,
    };

    let new_user = NewUser {
        id: &user.id,
        email: user.email.as_deref(),
        password_hash: Some(&hash),
        is_guest: false,
        now,
    };
    let kind = SessionKind::Password;
    create_user_with_session(&state, &req, &client, &user, &new_user, kind, Event::Signup).await
}

#[tracing::instrument(name = "login", skip_all)]
pub async fn login(
    state: web::Data<AppState>,
    req: HttpRequest,
    _browser: SetsRefreshCookie,
    Json(body): Json<Credentials>,
) -> ApiResult<HttpResponse> {
    let client = state.credential_attempt(&req)?;
    // An unparseable email is looked up as no user at all, so it costs the same dummy hash.
    let email = Email::parse(&body.email).ok();
    let account = throttle_account(&body.email, email.as_ref());
    let address = client.limit_key_text();
    wait_for_throttle(&state, &account, &address).await?;
    let stored = match &email {
        Some(email) => state.store.find_credentials(email.as_str()).await?,
        None => None,
    };
    let (user_id, hash, disabled) = match stored {
        Some(found) => (Some(found.user_id), found.password_hash, found.disabled),
        None => (None, None, false),
    };
    let verified_hash = hash.clone();
    // A disabled account still pays for the hash, and fails exactly like a wrong password:
    // the answer must not confirm that the password was right.
    let verified = state.hasher.verify(&body.password, hash).await? && !disabled;
    let (user_id, verified_hash) = match (user_id, verified_hash) {
        (Some(id), Some(verified_hash)) if verified => (id, verified_hash),
        (known, _) => {
            tracing::info!(disabled, "login failed");
            state.metrics.logins.with_label_values(&["failed"]).inc();
            let mut detail = json!({ "email": email.as_ref().map(|e| e.as_str()) });
            if disabled {
                detail["disabled"] = json!(true);
            }
            let user_id = known.as_deref();
            state
                .audit(Event::LoginFailed, user_id, None, &req, detail.clone())
                .await;
            let failure = state
                .throttle
                .failed(&account, &address, clock::now())
                .await?;
            if failure.blocked_client || failure.blocked_account {
                let detail = json!({ "email": account, "account_wide": failure.blocked_account });
                state
                    .audit(Event::LoginThrottled, user_id, None, &req, detail)
                    .await;
            }
            return Err(ApiError::InvalidCredentials);
        }
    };
    state.throttle.succeeded(&account, &address).await?;
    let user = state
        .store
        .find_user(&user_id)
        .await?
        .ok_or(ApiError::InvalidCredentials)?;
    let mut tx = state.store.begin().await?;
    if !Store::lock_current_credentials(&mut tx, &user.id, &verified_hash).await? {
        // The password changed, or the user was disabled, while we were verifying it.
        tracing::info!(user_id = %user.id, "login raced a password change or a disable");
        return Err(ApiError::InvalidCredentials);
    }
    let kind = SessionKind::Password;
    let opened = open_session(&mut tx, &state, &user.id, kind, &client, clock::now()).await?;
    tx.commit().await?;
    tracing::info!(user_id = %user.id, session_id = %opened.session_id, "logged in");
    state.metrics.logins.with_label_values(&["ok"]).inc();
    let sid = Some(opened.session_id.as_str());
    state
        .audit(Event::LoginSucceeded, Some(&user.id), sid, &req, json!({}))
        .await;
    opened_response(&state, StatusCode::OK, &user, kind, &opened)
}

#[tracing::instrument(name = "guest", skip_all)]
pub async fn guest(
    state: web::Data<AppState>,
    req: HttpRequest,
    _browser: SetsRefreshCookie,
    OptionalJson(_body): OptionalJson<serde_json::Map<String, serde_json::Value>>,
) -> ApiResult<HttpResponse> {
    let client = ClientInfo::from_request(&req, &state.settings.server);
    let now = clock::now();
    state.rate_limits.guest(&client, now).await?;
    let user = UserRow {
        id: uuid::Uuid::now_v7().to_string(),
        email: None,
        is_guest: 1,
        created_at: now,
    };
    let new_user = NewUser {
        id: &user.id,
        email: None,
        password_hash: None,
        is_guest: true,
        now,
    };
    let kind = SessionKind::Guest;
    create_user_with_session(&state, &req, &client, &user, &new_user, kind, Event::Guest).await
}

/// The account a login attempt counts against: the normalized email, or the input as typed
/// (trimmed, lowercased) when it is not an email, so that garbage is throttled too.
fn throttle_account(typed: &str, email: Option<&Email>) -> String {
    match email {
        Some(email) => email.as_str().to_string(),
        None => typed.trim().to_lowercase().chars().take(254).collect(),
    }
}

/// Refuses a throttled attempt (429, before any password is checked) or makes it wait.
async fn wait_for_throttle(state: &AppState, account: &str, address: &str) -> ApiResult<()> {
    match state.throttle.check(account, address, clock::now()).await? {
        Verdict::Open => Ok(()),
        Verdict::Slowed(pause) => {
            tokio::time::sleep(pause).await;
            Ok(())
        }
        Verdict::Blocked(retry_after) => {
            state.metrics.login_throttled.inc();
            Err(ApiError::RateLimited(retry_after.max(1) as u64))
        }
    }
}

/// Inserts a new user and opens their first session in one transaction, then answers 201.
async fn create_user_with_session(
    state: &AppState,
    req: &HttpRequest,
    client: &ClientInfo,
    user: &UserRow,
    new_user: &NewUser<'_>,
    kind: SessionKind<'_>,
    event: Event,
) -> ApiResult<HttpResponse> {
    let mut tx = state.store.begin().await?;
    if !Store::insert_user(&mut tx, new_user).await? {
        return Err(ApiError::EmailTaken);
    }
    let opened = open_session(&mut tx, state, &user.id, kind, client, new_user.now).await?;
    tx.commit().await?;
    tracing::info!(user_id = %user.id, session_id = %opened.session_id, kind = kind.as_str(), "new user");
    let sid = Some(opened.session_id.as_str());
    state
        .audit(event, Some(&user.id), sid, req, json!({}))
        .await;
    opened_response(state, StatusCode::CREATED, user, kind, &opened)
}
