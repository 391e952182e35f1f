//! The admin API, for backends holding a service key with the `admin` scope: a user's
//! sessions, revoking them, disabling, enabling or deleting the user, and reading audit events.

use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::audit::Event;
use crate::clock;
use crate::domain::RevokeReason;
use crate::error::{ApiError, ApiResult};
use crate::extract::ServiceClient;
use crate::issuance::SessionView;
use crate::service_keys::Scope;
use crate::state::AppState;
use crate::store::UserRow;

const MAX_AUDIT_LIMIT: i64 = 1000;

async fn existing_user(state: &AppState, user_id: &str) -> ApiResult<UserRow> {
    state
        .store
        .find_user(user_id)
        .await?
        .ok_or(ApiError::NotFound("no such user"))
}

/// Records an admin action on `user_id` in the audit trail, naming the calling service, and
/// answers 204: how every admin write ends.
async fn done(
    state: &AppState,
    client: &ServiceClient,
    req: &HttpRequest,
    event: Event,
    user_id: &str,
    mut detail: Value,
) -> ApiResult<HttpResponse> {
    detail["service"] = json!(&*client.0.name);
    state.audit(event, Some(user_id), None, req, detail).await;
    Ok(HttpResponse::NoContent().finish())
}

pub async fn sessions(
    state: web::Data<AppState>,
    client: ServiceClient,
    path: web::Path<String>,
) -> ApiResult<HttpResponse> {
    client.require(Scope::Admin)?;
    let user_id = path.into_inner();
    existing_user(&state, &user_id).await?;
    let idle = state.settings.sessions.idle_timeout_secs;
    let rows = state
        .store
        .list_live_sessions(&user_id, clock::now(), idle)
        .await?;
    let sessions: Vec<SessionView> = rows.iter().map(|s| SessionView::new(s, "")).collect();
    Ok(HttpResponse::Ok().json(json!({ "sessions": sessions })))
}

pub async fn revoke_sessions(
    state: web::Data<AppState>,
    client: ServiceClient,
    path: web::Path<String>,
    req: HttpRequest,
) -> ApiResult<HttpResponse> {
    client.require(Scope::Admin)?;
    let user_id = path.into_inner();
    existing_user(&state, &user_id).await?;
    let ended = state
        .store
        .revoke_user_sessions(&user_id, None, RevokeReason::Admin, clock::now())
        .await?;
    state.gate.ended(&ended);
    let detail = json!({ "revoked": ended.len() });
    done(
        &state,
        &client,
        &req,
        Event::AdminRevokedSessions,
        &user_id,
        detail,
    )
    .await
}

/// `DELETE /v1/admin/users/{id}/throttle`: forgets the user's failed logins, from every
/// address, so the owner (or a helpdesk) can get back in at once.
pub async fn clear_throttle(
    state: web::Data<AppState>,
    client: ServiceClient,
    path: web::Path<String>,
    req: HttpRequest,
) -> ApiResult<HttpResponse> {
    client.require(Scope::Admin)?;
    let user_id = path.into_inner();
    let user = existing_user(&state, &user_id).await?;
    let cleared = match &user.email {
        Some(email) => state.throttle.clear(email).await?,
        None => 0,
    };
    let detail = json!({ "cleared": cleared });
    done(
        &state,
        &client,
        &req,
        Event::AdminClearedThrottle,
        &user_id,
        detail,
    )
    .await
}

pub async fn delete_user(
    state: web::Data<AppState>,
    client: ServiceClient,
    path: web::Path<String>,
    req: HttpRequest,
) -> ApiResult<HttpResponse> {
    client.require(Scope::Admin)?;
    let user_id = path.into_inner();
    let ended = state
        .store
        .delete_user(&user_id)
        .await?
        .ok_or(ApiError::NotFound("no such user"))?;
    state.gate.ended(&ended);
    let detail = json!({ "sessions": ended.len() });
    done(
        &state,
        &client,
        &req,
        Event::AdminDeletedUser,
        &user_id,
        detail,
    )
    .await
}

/// `POST /v1/admin/users/{id}/disable`: the user can no longer log in, refresh or bridge, and
/// every session of theirs ends now, on every instance.
pub async fn disable_user(
    state: web::Data<AppState>,
    client: ServiceClient,
    path: web::Path<String>,
    req: HttpRequest,
) -> ApiResult<HttpResponse> {
    client.require(Scope::Admin)?;
    let user_id = path.into_inner();
    let ended = state
        .store
        .disable_user(&user_id, clock::now())
        .await?
        .ok_or(ApiError::NotFound("no such user"))?;
    state.gate.ended(&ended);
    let detail = json!({ "revoked": ended.len() });
    done(
        &state,
        &client,
        &req,
        Event::AdminDisabledUser,
        &user_id,
        detail,
    )
    .await
}

/// `POST /v1/admin/users/{id}/enable`: the user may log in again.
pub async fn enable_user(
    state: web::Data<AppState>,
    client: ServiceClient,
    path: web::Path<String>,
    req: HttpRequest,
) -> ApiResult<HttpResponse> {
    client.require(Scope::Admin)?;
    let user_id = path.into_inner();
    if !state.store.enable_user(&user_id, clock::now()).await? {
        return Err(ApiError::NotFound("no such user"));
    }
    done(
        &state,
        &client,
        &req,
        Event::AdminEnabledUser,
        &user_id,
        json!({}),
    )
    .await
}

#[derive(Deserialize)]
pub struct AuditQuery {
    user_id: Option<String>,
    limit: Option<i64>,
}

pub async fn audit_events(
    state: web::Data<AppState>,
    client: ServiceClient,
    query: web::Query<AuditQuery>,
) -> ApiResult<HttpResponse> {
    client.require(Scope::Admin)?;
    let limit = query.limit.unwrap_or(100);
    if !(1..=MAX_AUDIT_LIMIT).contains(&limit) {
        return Err(ApiError::InvalidRequest(format!(
            "limit must be between 1 and {MAX_AUDIT_LIMIT}"
        )));
    }
    if let Some(user_id) = &query.user_id
        && uuid::Uuid::parse_str(user_id).is_err()
    {
        return Err(ApiError::InvalidRequest(
            "user_id must be a user id (a UUID)".into(),
        ));
    }
    let rows = state
        .store
        .audit_events(query.user_id.as_deref(), limit)
        .await?;
    let events: Vec<Value> = rows
        .into_iter()
        .map(|row| {
            json!({
                "id": row.id,
                "at": clock::rfc3339(row.at),
                "type": row.kind,
                "user_id": row.user_id,
                "session_id": row.session_id,
                "ip_address": row.ip_address,
                "user_agent": row.user_agent,
                "detail": serde_json::from_str::<Value>(&row.detail).unwrap_or(Value::Null),
            })
        })
        .collect();
    Ok(HttpResponse::Ok().json(json!({ "events": events })))
}
