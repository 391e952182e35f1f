//! Liveness and readiness. `/healthz` never touches the database (a restart would not fix a
//! database outage); `/readyz` answers from the periodic database check (at most a second
//! old, `services::readiness`), so a load balancer stops routing to an instance that cannot
//! reach its store — or that is shutting down (see the graceful shutdown in startup.rs) —
//! without a probe ever costing a database write.

use actix_web::{HttpResponse, web};
use serde_json::json;

use crate::http::state::AppState;

pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({ "status": "ok" }))
}

pub async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    if state.is_shutting_down() {
        return HttpResponse::ServiceUnavailable()
            .insert_header(("Retry-After", "5"))
            .json(json!({ "status": "unavailable", "reason": "shutting down" }));
    }
    if state.services.health.ready() {
        HttpResponse::Ok().json(json!({ "status": "ready" }))
    } else {
        HttpResponse::ServiceUnavailable()
            .insert_header(("Retry-After", "5"))
            .json(json!({ "status": "unavailable" }))
    }
}
