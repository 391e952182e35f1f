//! Raw input is parsed once into these validated types; handlers never pass raw strings deeper.

pub mod assurance;
mod client;
mod email;
mod event;
mod ids;
mod password;
mod revoke_reason;
mod rotation;
mod scope;
mod session;
mod user;

pub use client::{ClientInfo, limit_key};
pub use email::{Email, EmailError};
pub use event::{SessionEvent, SessionEventKind};
pub use ids::{SessionId, UserId};
pub use password::{Password, PasswordPolicy, WeakPassword, normalize as normalize_password};
pub use revoke_reason::RevokeReason;
pub use rotation::{SpentToken, SpentTokenVerdict};
pub use scope::Scope;
pub use session::{Session, SessionKind, SessionStatus, SessionTimes};
pub use user::User;
