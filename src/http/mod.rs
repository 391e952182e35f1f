//! The HTTP edge: reading requests (extractors, the client's address, the refresh cookie),
//! rendering answers (views, the contract's errors), middleware (CORS, metrics, request ids)
//! and the route table. Everything below it is HTTP-free: handlers call `services` and turn
//! their results and errors into the contract's responses.

pub mod client_ip;
pub mod cookies;
pub mod cors;
pub mod error;
pub mod extract;
pub mod metrics;
pub mod request_span;
pub mod routes;
pub mod state;
pub mod views;
