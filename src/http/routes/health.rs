//! Liveness and readiness. `/healthz` never touches the database (a restart would not fix a
//! database outage); `/readyz` does, so a load balancer stops routing to an instance that
//! cannot reach its store — or that is shutting down (see the graceful shutdown in startup.rs).

use std::time::Duration;

use actix_web::{HttpResponse, web};
use serde_json::json;

use crate::http::state::AppState;

const READY_TIMEOUT: Duration = Duration::from_secs(2);

pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({ "status": "ok" }))
}

pub async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    if state.is_shutting_down() {
        return HttpResponse::ServiceUnavailable()
            .insert_header(("Retry-After", "5"))
            .json(json!({ "status": "unavailable", "reason": "shutting down" }));
    }
    match tokio::time::timeout(READY_TIMEOUT, state.services.ready()).await {
        Ok(Ok(())) => HttpResponse::Ok().json(json!({ "status": "ready" })),
        outcome => {
            tracing::warn!(timed_out = outcome.is_err(), "readiness check failed");
            HttpResponse::ServiceUnavailable()
                .insert_header(("Retry-After", "5"))
                .json(json!({ "status": "unavailable" }))
        }
    }
}
