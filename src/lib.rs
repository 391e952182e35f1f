#![forbid(unsafe_code)]

//! Layers, each importing only from the ones below it:
//! - entry points: `startup` (the server, and `startup::compose`, the one place that builds the
//!   core and wires each service from the parts it uses), `cli` (the operator's commands, run
//!   on the services `compose` builds);
//! - `http`: requests and responses, the contract's errors, the route table;
//! - `services`: what each operation does, HTTP-free;
//! - core, grouped by what it is about: `liveness` (the gate, the announcement bus, the event
//!   feed), `credentials` (passwords, access tokens and keys, service keys, the bridge),
//!   `limits` (throttle, rate limits), `observability` (audit, metrics, telemetry), and `error`
//!   (why an operation failed);
//! - `store`: all SQL and every transaction;
//! - `domain`, `config`, `clock`: validated values, settings, time.
//!
//! `tests/layers.rs` holds the table of ranks and checks it.

pub mod cli;
pub mod clock;
pub mod config;
pub mod credentials;
pub mod domain;
pub mod error;
pub mod http;
pub mod limits;
pub mod liveness;
pub mod mail;
pub mod observability;
pub mod services;
pub mod startup;
pub mod store;

/// jsonwebtoken compiles with no crypto backend chosen at run time and panics at the first
/// signature unless exactly one is installed; install ours before anything signs.
pub fn install_crypto_provider() {
    let _ = jsonwebtoken::crypto::aws_lc::DEFAULT_PROVIDER.install_default();
}
