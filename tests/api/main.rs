//! The API suite: every test starts the real app on port 0 against a fresh database. The
//! backend is chosen by `SESSIOND_TEST_DB` (`sqlite`, the default, or `postgres`); the
//! PostgreSQL half connects to `SESSIOND_TEST_PG_URL` (default
//! `postgres://postgres@127.0.0.1:5432/postgres`), creates one database per test and drops it.

mod helpers;
mod outage;

mod accounts;
mod admin;
mod announcements;
mod authenticator;
mod binary;
mod bridge;
mod bridge_keys;
mod cli;
mod cookies;
mod cors;
mod crash;
mod disabled;
mod events;
mod example_backend;
mod factors;
mod health;
mod introspect;
mod jwks;
mod limits;
mod logout;
mod maintenance;
mod me;
mod metrics;
mod migrations;
mod openapi;
mod otp;
mod passkeys;
mod password;
mod rate_limit;
mod recovery;
mod refresh;
mod restart;
mod revocation;
mod revoke;
mod service;
mod session_cap;
mod sessions;
mod shutdown;
mod smtp;
mod throttle;
mod upgrade;
mod validation;
mod ws_tickets;
