//! JSON logs through `tracing`, and the per-request root span: request id, method, route,
//! status and latency on every request. Request ids are echoed from `X-Request-Id` when the
//! client sent a sane one, generated (UUID v7) otherwise, and returned on every response.

use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::{Error, HttpMessage};
use tracing::Span;
use tracing_actix_web::RootSpanBuilder;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

use crate::config::LogSettings;

pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Installs the global subscriber, logging to stdout; `RUST_LOG` overrides the configured
/// level.
pub fn init(settings: &LogSettings) {
    init_with(settings, std::io::stdout);
}

/// As [`init`], logging to stderr: the operator's commands keep stdout for their results.
pub fn init_to_stderr(settings: &LogSettings) {
    init_with(settings, std::io::stderr);
}

fn init_with<W>(settings: &LogSettings, writer: W)
where
    W: for<'w> tracing_subscriber::fmt::MakeWriter<'w> + Send + Sync + 'static,
{
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new(format!("{},sqlx=warn", settings.level)));
    let registry = tracing_subscriber::registry().with(filter);
    let result = if settings.format == "pretty" {
        registry
            .with(tracing_subscriber::fmt::layer().with_writer(writer))
            .try_init()
    } else {
        registry
            .with(
                tracing_subscriber::fmt::layer()
                    .with_writer(writer)
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

/// The client's own `X-Request-Id`, when it is sane enough to echo and log.
fn client_request_id(request: &ServiceRequest) -> Option<HeaderValue> {
    request.headers().get(&REQUEST_ID).cloned().filter(|v| {
        let bytes = v.as_bytes();
        !bytes.is_empty() && bytes.len() <= 128 && bytes.iter().all(|b| b.is_ascii_graphic())
    })
}

/// Root span with the request id: the client's when it sent one, else tracing-actix-web's.
pub struct RequestSpan;

impl RootSpanBuilder for RequestSpan {
    fn on_request_start(request: &ServiceRequest) -> Span {
        let client_id = client_request_id(request);
        let id = client_id.clone().unwrap_or_else(|| {
            let generated = request
                .extensions()
                .get::<tracing_actix_web::RequestId>()
                .map(|id| id.to_string())
                .unwrap_or_else(|| uuid::Uuid::now_v7().to_string());
            HeaderValue::from_str(&generated).expect("uuid is ASCII")
        });
        request.extensions_mut().insert(RequestId(id));
        request.extensions_mut().insert(Started(Instant::now()));
        match client_id {
            Some(sent) => {
                let sent = sent.to_str().unwrap_or_default().to_string();
                tracing_actix_web::root_span!(request, client_request_id = %sent)
            }
            None => tracing_actix_web::root_span!(request),
        }
    }

    fn on_request_end<B: MessageBody>(span: Span, outcome: &Result<ServiceResponse<B>, Error>) {
        // One line per request; error causes worth logging (5xx) are logged where they occur.
        if let Ok(response) = outcome {
            let latency_ms = response
                .request()
                .extensions()
                .get::<Started>()
                .map(|s| s.0.elapsed().as_secs_f64() * 1000.0);
            let status = response.status().as_u16();
            span.record("http.status_code", status);
            span.in_scope(|| tracing::info!(status, latency_ms, "request completed"));
        }
    }
}
