//! The admin API, for backends holding a service key with the `admin` scope: a user's
//! sessions, revoking them, disabling, enabling or deleting the user, and reading audit events.

use actix_web::{HttpResponse, web};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::clock;
use crate::domain::Scope;
use crate::domain::UserId;
use crate::error::Error;
use crate::http::error::{ApiError, ApiResult};
use crate::http::extract::{Client, ServiceClient};
use crate::http::state::AppState;
use crate::http::views::SessionView;
use crate::services::admin::AdminCaller;

const MAX_AUDIT_LIMIT: i64 = 1000;

pub async fn sessions(
    state: web::Data<AppState>,
    client: ServiceClient,
    path: web::Path<String>,
) -> ApiResult<HttpResponse> {
    client.require(Scope::Admin)?;
    let sessions = state.services.admin.user_sessions(&user_id(&path)?).await?;
    let sessions = SessionView::list(&sessions, "");
    Ok(HttpResponse::Ok().json(json!({ "sessions": sessions })))
}

/// The user the path names; one that is not even an id is no such user.
fn user_id(path: &str) -> Result<UserId, Error> {
    UserId::parse(path).ok_or(Error::NotFound("no such user"))
}

/// The admin writes: each names the user in the path, and answers 204.
macro_rules! admin_write {
    ($(#[$doc:meta])* $name:ident => $operation:ident) => {
        $(#[$doc])*
        pub async fn $name(
            state: web::Data<AppState>,
            service: ServiceClient,
            path: web::Path<String>,
            Client(client): Client,
        ) -> ApiResult<HttpResponse> {
            service.require(Scope::Admin)?;
            let by = AdminCaller {
                service: &service.0.name,
                client: &client,
            };
            state.services.admin.$operation(&user_id(&path)?, &by).await?;
            Ok(HttpResponse::NoContent().finish())
        }
    };
}

admin_write!(revoke_sessions => revoke_user_sessions);
admin_write!(
    /// `DELETE /v1/admin/users/{id}/throttle`: forgets the user's failed logins.
    clear_throttle => clear_throttle
);
admin_write!(delete_user => delete_user);
admin_write!(
    /// `POST /v1/admin/users/{id}/disable`: no more logins, and every session ends now.
    disable_user => disable_user
);
admin_write!(
    /// `POST /v1/admin/users/{id}/enable`: the user may log in again.
    enable_user => enable_user
);

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
        .services
        .admin
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
                "detail": row.detail,
            })
        })
        .collect();
    Ok(HttpResponse::Ok().json(json!({ "events": events })))
}
