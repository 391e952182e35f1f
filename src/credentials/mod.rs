//! What proves who the caller is: passwords (argon2), access tokens and their signing keys,
//! service keys, third-party tokens exchanged through the session bridge, and second factors
//! (TOTP codes and recovery codes).

pub mod bridge;
pub mod passkeys;
pub mod passwords;
pub mod service_keys;
pub mod tokens;
pub mod totp;
