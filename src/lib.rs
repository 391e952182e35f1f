#![forbid(unsafe_code)]

pub mod audit;
pub mod bridge;
pub mod cli;
pub mod client_ip;
pub mod clock;
pub mod config;
pub mod cookies;
pub mod cors;
pub mod domain;
pub mod error;
pub mod events;
pub mod extract;
pub mod gate;
pub mod issuance;
pub mod maintenance;
pub mod metrics;
pub mod passwords;
pub mod rate_limit;
pub mod routes;
pub mod service_keys;
pub mod startup;
pub mod state;
pub mod store;
pub mod telemetry;
pub mod throttle;
pub mod tokens;

/// jsonwebtoken compiles with no crypto backend chosen at run time and panics at the first
/// signature unless exactly one is installed; install ours before anything signs.
pub fn install_crypto_provider() {
    let _ = jsonwebtoken::crypto::aws_lc::DEFAULT_PROVIDER.install_default();
}
