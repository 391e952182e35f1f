//! `POST /v1/logout` with the scopes `local` (this session), `others` and `global`.

use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::audit::Event;

use crate::clock;
use crate::error::ApiResult;
use crate::extract::{OptionalJson, SignedToken};
use crate::state::AppState;

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
    SignedToken(claims): SignedToken,
    OptionalJson(body): OptionalJson<LogoutBody>,
) -> ApiResult<HttpResponse> {
    let scope = body.map(|b| b.scope).unwrap_or_default();
    let now = clock::now();
    let store = &state.store;
    let reason = "logout";
    let ended = match scope {
        Scope::Local => {
            let revoked = store.revoke_session(&claims.sid, None, reason, now).await?;
            revoked.then(|| claims.sid.clone()).into_iter().collect()
        }
        Scope::Others => {
            store
                .revoke_user_sessions(&claims.sub, Some(&claims.sid), reason, now)
                .await?
        }
        Scope::Global => {
            store
                .revoke_user_sessions(&claims.sub, None, reason, now)
                .await?
        }
    };
    state.gate.ended(&ended).await?;
    let revoked = ended.len();
    tracing::info!(user_id = %claims.sub, session_id = %claims.sid, ?scope, revoked, "logout");
    let detail = json!({ "scope": scope, "revoked": ended });
    let (user, sid) = (Some(claims.sub.as_str()), Some(claims.sid.as_str()));
    state.audit(Event::Logout, user, sid, &req, detail).await;
    Ok(HttpResponse::NoContent().finish())
}
