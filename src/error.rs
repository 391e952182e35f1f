//! `ApiError` is the only error a handler returns; it renders the contract's JSON error body
//! (`{"error", "error_description"}`) with the right status. Causes of 500s and 503s are logged
//! with their full chain and never sent to the client.

use actix_web::http::{StatusCode, header};
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;

use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    InvalidRequest(String),
    #[error("invalid email or password")]
    InvalidCredentials,
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
    #[error("{0}")]
    Forbidden(&'static str),
    #[error("{0}")]
    NotFound(&'static str),
    #[error("method not allowed")]
    MethodNotAllowed,
    #[error("an account with this email already exists")]
    EmailTaken,
    #[error("the request body is larger than 16 KiB")]
    PayloadTooLarge,
    #[error("{0}")]
    UnsupportedMediaType(&'static str),
    #[error("{0}")]
    InvalidEmail(&'static str),
    #[error("{0}")]
    WeakPassword(String),
    #[error("too many attempts; retry later")]
    RateLimited(u64),
    #[error("the service is temporarily unavailable")]
    Unavailable(#[source] anyhow::Error),
    #[error("internal error")]
    Internal(#[from] anyhow::Error),
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: &'a str,
    error_description: String,
}

impl ApiError {
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::InvalidRequest(_) => "invalid_request",
            ApiError::InvalidCredentials => "invalid_credentials",
            ApiError::InvalidToken(_) => "invalid_token",
            ApiError::InvalidRefreshToken => "invalid_refresh_token",
            ApiError::RefreshTokenReused => "refresh_token_reused",
            ApiError::SessionRevoked => "session_revoked",
            ApiError::SessionExpired => "session_expired",
            ApiError::InvalidClient => "invalid_client",
            ApiError::InvalidBridgeToken => "invalid_bridge_token",
            ApiError::UnknownProvider => "unknown_provider",
            ApiError::Forbidden(_) => "forbidden",
            ApiError::NotFound(_) => "not_found",
            ApiError::MethodNotAllowed => "method_not_allowed",
            ApiError::EmailTaken => "email_taken",
            ApiError::PayloadTooLarge => "payload_too_large",
            ApiError::UnsupportedMediaType(_) => "unsupported_media_type",
            ApiError::InvalidEmail(_) => "invalid_email",
            ApiError::WeakPassword(_) => "weak_password",
            ApiError::RateLimited(_) => "rate_limited",
            ApiError::Unavailable(_) => "unavailable",
            ApiError::Internal(_) => "internal_error",
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::InvalidRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::InvalidCredentials
            | ApiError::InvalidToken(_)
            | ApiError::InvalidRefreshToken
            | ApiError::RefreshTokenReused
            | ApiError::SessionRevoked
            | ApiError::SessionExpired
            | ApiError::InvalidClient
            | ApiError::InvalidBridgeToken => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::EmailTaken => StatusCode::CONFLICT,
            ApiError::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::InvalidEmail(_) | ApiError::WeakPassword(_) | ApiError::UnknownProvider => {
                StatusCode::UNPROCESSABLE_ENTITY
            }
            ApiError::RateLimited(_) => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        match self {
            ApiError::Internal(cause) => tracing::error!(error = ?cause, "request failed"),
            ApiError::Unavailable(cause) => {
                tracing::warn!(error = ?cause, "temporarily unavailable")
            }
            _ => {}
        }
        let mut response = HttpResponse::build(self.status_code());
        response.insert_header((header::CACHE_CONTROL, "no-store"));
        match self {
            ApiError::Unavailable(_) => {
                response.insert_header((header::RETRY_AFTER, "5"));
            }
            ApiError::RateLimited(wait) => {
                response.insert_header((header::RETRY_AFTER, wait.to_string()));
            }
            _ => {}
        }
        if let ApiError::InvalidToken(_) = self {
            response.insert_header((header::WWW_AUTHENTICATE, "Bearer error=\"invalid_token\""));
        }
        response.json(ErrorBody {
            error: self.code(),
            error_description: self.to_string(),
        })
    }
}

impl From<crate::passwords::HashError> for ApiError {
    fn from(err: crate::passwords::HashError) -> Self {
        match err {
            crate::passwords::HashError::Busy => ApiError::Unavailable(err.into()),
            crate::passwords::HashError::Failed(e) => ApiError::Internal(e),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::Unavailable(e) => ApiError::Unavailable(e.into()),
            StoreError::Other(e) => ApiError::Internal(e.into()),
        }
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

impl From<sqlx::Error> for ApiError {
    fn from(err: sqlx::Error) -> Self {
        StoreError::from(err).into()
    }
}
