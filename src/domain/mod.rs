//! Raw input is parsed once into these validated types; handlers never pass raw strings deeper.

mod email;
mod password;
mod revoke_reason;

pub use email::Email;
pub use password::{Password, PasswordPolicy, normalize as normalize_password};
pub use revoke_reason::RevokeReason;
