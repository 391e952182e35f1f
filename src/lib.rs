#![forbid(unsafe_code)]

//! Layers, each importing only from the ones below it:
//! - entry points: `startup` (the server), `cli` (the operator's commands), `telemetry`;
//! - `http`: requests and responses, the contract's errors, the route table;
//! - `services`: what each operation does, HTTP-free;
//! - core: `tokens`, `passwords`, `gate`, `bus` (the LISTEN connection), `events`, `audit`,
//!   `rate_limit`, `throttle`, `service_keys`, `bridge`, `metrics`, and `error` (why an
//!   operation failed);
//! - `store`: all SQL and every transaction;
//! - `domain`, `config`, `clock`: validated values, settings, time.
//!
//! `tests/layers.rs` checks the direction.

pub mod audit;
pub mod bridge;
pub mod bus;
pub mod cli;
pub mod clock;
pub mod config;
pub mod domain;
pub mod error;
pub mod events;
pub mod gate;
pub mod http;
pub mod metrics;
pub mod passwords;
pub mod rate_limit;
pub mod service_keys;
pub mod services;
pub mod startup;
pub mod store;
pub mod telemetry;
pub mod throttle;
pub mod tokens;

/// jsonwebtoken compiles with no crypto backend chosen at run time and panics at the first
/// signature unless exactly one is installed; install ours before anything signs.
pub fn install_crypto_provider() {
    let _ = jsonwebtoken::crypto::aws_lc::DEFAULT_PROVIDER.install_default();
}
