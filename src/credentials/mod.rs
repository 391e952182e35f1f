//! What proves who the caller is: passwords (argon2), access tokens and their signing keys,
//! service keys, and third-party tokens exchanged through the session bridge.

pub mod bridge;
pub mod passwords;
pub mod service_keys;
pub mod tokens;
