//! `ApiError` is the only error a handler returns; it renders the contract's JSON error body
//! (`{"error", "error_description"}`) with the right status. The service's own failures
//! ([`Error`]) become one here, at the edge, each with its contract code; causes of 500s and
//! 503s are logged with their full chain and never sent to the client.

use actix_web::http::{StatusCode, header};
use actix_web::{HttpResponse, ResponseError};
use secrecy::ExposeSecret;
use serde::Serialize;

use crate::error::Error;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// A request the contract does not accept (a missing or malformed parameter).
    #[error("{0}")]
    InvalidRequest(String),
    #[error("method not allowed")]
    MethodNotAllowed,
    #[error("the request body is larger than 16 KiB")]
    PayloadTooLarge,
    #[error("{0}")]
    UnsupportedMediaType(&'static str),
    /// A refresh with no refresh token at all: 401 `invalid_refresh_token`, with a description
    /// that says where the token was looked for (a browser client in cookie mode talking to a
    /// sessiond without it sends none).
    #[error("{0}")]
    NoRefreshToken(&'static str),
    #[error(transparent)]
    Service(#[from] Error),
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
            ApiError::MethodNotAllowed => "method_not_allowed",
            ApiError::PayloadTooLarge => "payload_too_large",
            ApiError::UnsupportedMediaType(_) => "unsupported_media_type",
            ApiError::NoRefreshToken(_) => "invalid_refresh_token",
            ApiError::Service(err) => service_code(err),
        }
    }
}

fn service_code(err: &Error) -> &'static str {
    match err {
        Error::InvalidCredentials => "invalid_credentials",
        Error::InvalidToken(_) => "invalid_token",
        Error::InvalidRefreshToken => "invalid_refresh_token",
        Error::RefreshTokenReused => "refresh_token_reused",
        Error::SessionRevoked => "session_revoked",
        Error::SessionExpired => "session_expired",
        Error::InvalidClient => "invalid_client",
        Error::InvalidBridgeToken => "invalid_bridge_token",
        Error::UnknownProvider => "unknown_provider",
        Error::InvalidGrant => "invalid_grant",
        Error::InsufficientAuthentication { .. } => "insufficient_user_authentication",
        Error::EmailNotVerified => "email_not_verified",
        Error::MfaRequired { .. } => "mfa_required",
        Error::AlreadyEnabled(_) => "already_enabled",
        Error::LastCredential => "last_credential",
        Error::InvalidInput(_) => "invalid_request",
        Error::Forbidden(_) => "forbidden",
        Error::NotFound(_) => "not_found",
        Error::EmailTaken => "email_taken",
        Error::InvalidEmail(_) => "invalid_email",
        Error::WeakPassword(_) => "weak_password",
        Error::RateLimited(_) => "rate_limited",
        Error::Unavailable(_) => "unavailable",
        Error::Internal(_) => "internal_error",
    }
}

fn service_status(err: &Error) -> StatusCode {
    match err {
        Error::InvalidCredentials
        | Error::InvalidToken(_)
        | Error::InvalidRefreshToken
        | Error::RefreshTokenReused
        | Error::SessionRevoked
        | Error::SessionExpired
        | Error::InvalidClient
        | Error::InvalidBridgeToken
        | Error::InsufficientAuthentication { .. }
        | Error::MfaRequired { .. } => StatusCode::UNAUTHORIZED,
        Error::InvalidGrant | Error::InvalidInput(_) => StatusCode::BAD_REQUEST,
        Error::Forbidden(_) | Error::EmailNotVerified => StatusCode::FORBIDDEN,
        Error::NotFound(_) => StatusCode::NOT_FOUND,
        Error::EmailTaken | Error::AlreadyEnabled(_) | Error::LastCredential => {
            StatusCode::CONFLICT
        }
        Error::InvalidEmail(_) | Error::WeakPassword(_) | Error::UnknownProvider => {
            StatusCode::UNPROCESSABLE_ENTITY
        }
        Error::RateLimited(_) => StatusCode::TOO_MANY_REQUESTS,
        Error::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        Error::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::InvalidRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::NoRefreshToken(_) => StatusCode::UNAUTHORIZED,
            ApiError::Service(err) => service_status(err),
        }
    }

    fn error_response(&self) -> HttpResponse {
        match self {
            ApiError::Service(Error::Internal(cause)) => {
                tracing::error!(error = ?cause, "request failed")
            }
            ApiError::Service(Error::Unavailable(cause)) => {
                tracing::warn!(error = ?cause, "temporarily unavailable")
            }
            _ => {}
        }
        let mut response = HttpResponse::build(self.status_code());
        response.insert_header((header::CACHE_CONTROL, "no-store"));
        match self {
            ApiError::Service(Error::Unavailable(_)) => {
                response.insert_header((header::RETRY_AFTER, "5"));
            }
            ApiError::Service(Error::RateLimited(wait)) => {
                response.insert_header((header::RETRY_AFTER, wait.to_string()));
            }
            _ => {}
        }
        match self {
            ApiError::Service(Error::InvalidToken(_)) => {
                response
                    .insert_header((header::WWW_AUTHENTICATE, "Bearer error=\"invalid_token\""));
            }
            // RFC 9470: the client re-authenticates (POST /v1/reauth) and retries.
            ApiError::Service(Error::InsufficientAuthentication { max_age }) => {
                let challenge =
                    format!("Bearer error=\"insufficient_user_authentication\", max_age={max_age}");
                response.insert_header((header::WWW_AUTHENTICATE, challenge));
            }
            _ => {}
        }
        // The one error whose body carries more: what the client presents with the code.
        if let ApiError::Service(Error::MfaRequired { mfa_token, methods }) = self {
            return response.json(serde_json::json!({
                "error": self.code(),
                "error_description": self.to_string(),
                "mfa_token": mfa_token.expose_secret(),
                "methods": methods,
            }));
        }
        response.json(ErrorBody {
            error: self.code(),
            error_description: self.to_string(),
        })
    }
}

pub type ApiResult<T> = Result<T, ApiError>;
