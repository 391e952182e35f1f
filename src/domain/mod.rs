//! Raw input is parsed once into these validated types; handlers never pass raw strings deeper.

mod email;
mod password;

pub use email::Email;
pub use password::{Password, PasswordPolicy, normalize as normalize_password};
