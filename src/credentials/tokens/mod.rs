//! Everything that mints or checks a token: access JWTs, the signing key ring behind them and
//! the JWKS that publishes it, and the opaque refresh tokens and their hashes.

pub mod access;
pub mod keys;
pub mod opaque;
pub mod sealing;

pub use access::{AccessClaims, AccessTokens};
pub use keys::KeyRing;
