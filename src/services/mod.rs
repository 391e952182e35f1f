//! The service's operations, one service per capability: what signup, login, a refresh or
//! ending a session *does*, independent of HTTP. Each operation owns its steps (validate,
//! limit, write through the store, tell the gate, audit) so a caller cannot forget one; `http/`
//! and the CLI only read their input and render answers.
//!
//! Each service holds only the parts of the core it uses, handed to its `new` by the
//! composition root (`startup`); a service that builds on another (accounts open sessions,
//! admin ends them) holds that service. A new capability is a new file here with its own
//! struct, one field in [`Services`] and one line in the composition root.

pub mod accounts;
pub mod admin;
pub mod bridge;
pub mod credentials;
pub mod ending;
pub mod factors;
pub mod freshness;
pub mod health;
pub mod login;
pub mod mail;
pub mod maintenance;
pub mod passkeys;
pub mod readiness;
pub mod recovery;
pub mod sessions;
pub mod tickets;
pub mod validation;

// What the HTTP layer needs from the core, named here so that `http/` depends on services alone.
pub use crate::credentials::service_keys::Caller;
pub use crate::liveness::events::{EventFeed, PAGE, PublishedEvent};
pub use crate::observability::metrics::Metrics;

use std::sync::Arc;

/// Every service of one instance, as the composition root wired them. Cheap to clone.
#[derive(Clone)]
pub struct Services {
    /// Signup, guests, login, a guest's upgrade, password change.
    pub accounts: Arc<accounts::Accounts>,
    /// Refresh and the list of a user's sessions (opening one is the other services' step).
    pub sessions: Arc<sessions::Sessions>,
    /// Whether a token (access, cookie, service key) stands for something live right now.
    pub validation: Arc<validation::Validation>,
    /// Verified email, password reset, sign-in by email, email change, self-deletion,
    /// re-authentication.
    pub recovery: Arc<recovery::Recovery>,
    /// Second factors (TOTP and recovery codes) and completing a login that needs one.
    pub factors: Arc<factors::Factors>,
    /// Passkeys: registration (a guest's way to become permanent), sign-in, the user's list.
    pub passkeys: Arc<passkeys::Passkeys>,
    /// Logout, revocation: every way a session ends.
    pub ending: Arc<ending::Ending>,
    /// What an `admin` service key (or the operator's CLI) may do to a user.
    pub admin: Arc<admin::Admin>,
    /// One-time WebSocket tickets.
    pub tickets: Arc<tickets::Tickets>,
    /// Third-party tokens exchanged for local sessions.
    pub bridge: Arc<bridge::BridgeSignIn>,
    /// Readiness and metrics.
    pub health: Arc<health::Health>,
    /// Background upkeep: key re-reads, readiness checks, purges.
    pub upkeep: Arc<maintenance::Upkeep>,
}
