//! The HTTP side of the metrics: counting every request under its route pattern, and serving
//! the registry as text at `/metrics`.

use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::{Error, web};

use crate::http::error::ApiError;
use crate::http::state::AppState;

/// Middleware: counts every request under its route pattern (never the raw path, whose ids
/// would make the label set unbounded).
pub async fn record(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    let started = Instant::now();
    let route = req.match_pattern().unwrap_or_else(|| "unmatched".into());
    let method = method_label(req.method());
    let state = req.app_data::<web::Data<AppState>>().cloned();
    let response = next.call(req).await?;
    if let Some(state) = state {
        // `as_str` is the status's static text: no allocation per request.
        let status = response.status();
        state
            .metrics
            .observe(&route, method, status.as_str(), started.elapsed());
    }
    Ok(response)
}

/// The method as a label from a fixed set: clients may send any token as a method, and every
/// new label value would be a series kept for the life of the process.
fn method_label(method: &actix_web::http::Method) -> &'static str {
    use actix_web::http::Method as M;
    match *method {
        M::GET => "GET",
        M::POST => "POST",
        M::PUT => "PUT",
        M::PATCH => "PATCH",
        M::DELETE => "DELETE",
        M::HEAD => "HEAD",
        M::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

/// `GET /metrics`. With `metrics.bearer_token` set, only callers presenting it may read.
pub async fn export(
    state: web::Data<AppState>,
    req: actix_web::HttpRequest,
) -> Result<actix_web::HttpResponse, ApiError> {
    let token = state.settings.metrics.bearer_token.as_ref();
    if let Some(expected) = token.filter(|t| !secrecy::ExposeSecret::expose_secret(*t).is_empty()) {
        use secrecy::ExposeSecret;
        use subtle::ConstantTimeEq;
        let presented = crate::http::extract::bearer_token(&req).unwrap_or_default();
        let same: bool = presented
            .as_bytes()
            .ct_eq(expected.expose_secret().as_bytes())
            .into();
        if !same {
            return Err(crate::error::Error::InvalidClient.into());
        }
    }
    let body = state.services.health.render_metrics().await;
    Ok(actix_web::HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(body))
}
