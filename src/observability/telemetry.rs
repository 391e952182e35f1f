//! JSON logs through `tracing` (the per-request root span is `http::request_span`).

use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

use crate::config::LogSettings;

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
