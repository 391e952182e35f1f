//! The API suite: every test starts the real app on port 0 against a fresh database. The
//! backend is chosen by `SESSIOND_TEST_DB` (`sqlite`, the default, or `postgres`); the
//! PostgreSQL half connects to `SESSIOND_TEST_PG_URL` (default
//! `postgres://postgres@127.0.0.1:5432/postgres`), creates one database per test and drops it.

mod helpers;
mod outage;

mod accounts;
mod health;
mod jwks;
mod logout;
mod me;
mod openapi;
mod password;
mod refresh;
mod restart;
mod revocation;
mod revoke;
mod sessions;
mod example_backend;
