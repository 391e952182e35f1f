//! JSON logs through `tracing`, and the per-request root span: request id, method, route,
//! status and latency on every request. Request ids are echoed from `X-Request-Id` when the
//! client sent a sane one, generated (UUID v7) otherwise, and returned on every response.

use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::{Error, HttpMessage};
use tracing::Span;
use tracing_actix_web::{DefaultRootSpanBuilder, RootSpanBuilder};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

use crate::config::LogSettings;

pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Installs the global subscriber; `RUST_LOG` overrides the configured level.
pub fn init(settings: &LogSettings) {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new(format!("{},sqlx=warn", settings.level)));
    let registry = tracing_subscriber::registry().with(filter);
    let result = if settings.format == "pretty" {
        registry.with(tracing_subscriber::fmt::layer()).try_init()
    } else {
        registry
            .with(
                tracing_subscriber::fmt::layer()
                    .json()
                    .with_current_span(true)
                    .with_span_list(false),
            )
            .try_init()
    };
    // A second init (tests start several apps in one process) keeps the first subscriber.
    drop(result);
}

#[derive(Clone)]
pub struct RequestId(pub HeaderValue);

struct Started(Instant);

fn request_id_of(request: &ServiceRequest) -> HeaderValue {
    request
        .headers()
        .get(&REQUEST_ID)
        .filter(|v| {
            let bytes = v.as_bytes();
            !bytes.is_empty() && bytes.len() <= 128 && bytes.iter().all(|b| b.is_ascii_graphic())
        })
        .cloned()
        .unwrap_or_else(|| {
            HeaderValue::from_str(&uuid::Uuid::now_v7().to_string()).expect("uuid is ASCII")
        })
}

/// Root span with our request id instead of tracing-actix-web's own.
pub struct RequestSpan;

impl RootSpanBuilder for RequestSpan {
    fn on_request_start(request: &ServiceRequest) -> Span {
        let id = request_id_of(request);
        let shown = id.to_str().unwrap_or_default().to_string();
        request.extensions_mut().insert(RequestId(id));
        request.extensions_mut().insert(Started(Instant::now()));
        tracing_actix_web::root_span!(request, request_id = %shown)
    }

    fn on_request_end<B: MessageBody>(span: Span, outcome: &Result<ServiceResponse<B>, Error>) {
        if let Ok(response) = outcome {
            let latency_ms = response
                .request()
                .extensions()
                .get::<Started>()
                .map(|s| s.0.elapsed().as_secs_f64() * 1000.0);
            let status = response.status().as_u16();
            span.in_scope(|| tracing::info!(status, latency_ms, "request completed"));
        }
        DefaultRootSpanBuilder::on_request_end(span, outcome);
    }
}
