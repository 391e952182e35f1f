//! Why an operation of the service failed, in the service's own words. Core modules and
//! services return [`Error`]; only `http/` knows the contract's error codes and statuses, and
//! turns each variant into its code and status.

use crate::domain::{EmailError, WeakPassword};
use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid email or password")]
    InvalidCredentials,
    /// An access token (or a session cookie standing for one) that does not name a live
    /// session; the text says which check failed.
    #[error("{0}")]
    InvalidToken(&'static str),
    #[error("the refresh token is invalid or expired")]
    InvalidRefreshToken,
    #[error("the refresh token was already used; the session has been revoked")]
    RefreshTokenReused,
    #[error("the session has been revoked")]
    SessionRevoked,
    #[error("the session has expired")]
    SessionExpired,
    #[error("a valid service key is required")]
    InvalidClient,
    #[error("the third-party token failed verification")]
    InvalidBridgeToken,
    #[error("no bridge provider with that name is configured")]
    UnknownProvider,
    /// A mailed token or code that is unknown, spent, expired or wrong (never which).
    #[error("the token or code is invalid, spent or expired")]
    InvalidGrant,
    /// The endpoint needs an authentication within `max_age` seconds (RFC 9470).
    #[error("this needs a recent authentication: re-authenticate and retry")]
    InsufficientAuthentication { max_age: i64 },
    /// The first factor was right; a second is due. The token is the client's to present
    /// with the code (`POST /v1/login/mfa`): a secret, never printed.
    #[error("a second factor is required")]
    MfaRequired {
        mfa_token: secrecy::SecretString,
        methods: Vec<&'static str>,
    },
    /// The account already has this factor (disable it first).
    #[error("{0}")]
    AlreadyEnabled(&'static str),
    /// A field a service validates itself was malformed (400 `invalid_request`).
    #[error("{0}")]
    InvalidInput(&'static str),
    /// Removing this would leave the account no way to sign in.
    #[error("this is the only way left to sign in to this account")]
    LastCredential,
    #[error("the email address of this account is not verified yet")]
    EmailNotVerified,
    #[error("{0}")]
    Forbidden(&'static str),
    #[error("{0}")]
    NotFound(&'static str),
    #[error("an account with this email already exists")]
    EmailTaken,
    #[error("{0}")]
    InvalidEmail(&'static str),
    #[error("{0}")]
    WeakPassword(String),
    /// Too many attempts; the number is the seconds to wait.
    #[error("too many attempts; retry later")]
    RateLimited(u64),
    /// Something we depend on cannot serve right now (database, argon2 queue, a provider's
    /// JWKS); retrying later may succeed.
    #[error("the service is temporarily unavailable")]
    Unavailable(#[source] anyhow::Error),
    #[error("internal error")]
    Internal(#[from] anyhow::Error),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl From<StoreError> for Error {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::Unavailable(e) => Error::Unavailable(e.into()),
            StoreError::Other(e) => Error::Internal(e.into()),
        }
    }
}

impl From<EmailError> for Error {
    fn from(err: EmailError) -> Self {
        Error::InvalidEmail(err.0)
    }
}

impl From<WeakPassword> for Error {
    fn from(err: WeakPassword) -> Self {
        Error::WeakPassword(err.0)
    }
}
