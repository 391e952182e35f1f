//! Request extractors that turn raw HTTP into validated input or a contract error: JSON bodies
//! (415/413/400 as the contract says), bearer tokens, and the client's user agent and IP.

use std::future::Future;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::{FromRequest, HttpMessage, HttpRequest, web};
use futures_util::StreamExt;
use serde::de::DeserializeOwned;

use crate::config::ServerSettings;
use crate::domain::ClientInfo;
use crate::domain::Scope;
use crate::error::Error;
use crate::http::client_ip::{ProxyTrust, client_ip};
use crate::http::error::ApiError;
use crate::http::state::AppState;
use crate::services::Caller;
pub use crate::services::validation::Authenticated;

pub const MAX_BODY: usize = 16 * 1024;
const MAX_USER_AGENT: usize = 512;

type Boxed<T> = Pin<Box<dyn Future<Output = Result<T, ApiError>>>>;

/// A required JSON body.
pub struct Json<T>(pub T);

/// A JSON body that may be absent (empty); when present it must be valid JSON of type `T`.
pub struct OptionalJson<T>(pub Option<T>);

/// A JSON or `application/x-www-form-urlencoded` body, as RFC 7009/7662 endpoints accept.
pub struct JsonOrForm<T>(pub T);

#[derive(Clone, Copy, PartialEq)]
enum BodyKind {
    Json,
    Form,
}

fn body_kind(req: &HttpRequest, allow_form: bool) -> Result<BodyKind, ApiError> {
    let mime = req.mime_type().ok().flatten();
    match mime {
        Some(m) if m.type_() == "application" && m.subtype() == "json" => Ok(BodyKind::Json),
        Some(m) if allow_form && m.essence_str() == "application/x-www-form-urlencoded" => {
            Ok(BodyKind::Form)
        }
        _ if allow_form => Err(ApiError::UnsupportedMediaType(
            "send application/json or application/x-www-form-urlencoded",
        )),
        _ => Err(ApiError::UnsupportedMediaType(
            "send Content-Type: application/json",
        )),
    }
}

/// Reads the body, refusing more than 16 KiB before buffering it.
async fn read_body(req: &HttpRequest, mut payload: Payload) -> Result<web::Bytes, ApiError> {
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > MAX_BODY) {
        return Err(ApiError::PayloadTooLarge);
    }
    let mut body = web::BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk =
            chunk.map_err(|_| ApiError::InvalidRequest("could not read the body".into()))?;
        if body.len() + chunk.len() > MAX_BODY {
            return Err(ApiError::PayloadTooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    // Every body in the contract is an object; serde would also build a struct from an array.
    if bytes.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(ApiError::InvalidRequest(
            "the body must be a JSON object".into(),
        ));
    }
    serde_json::from_slice(bytes).map_err(|err| {
        // serde's message names the field and position, never the value.
        let what = match err.classify() {
            serde_json::error::Category::Data => format!("invalid field: {err}"),
            _ => "the body is not valid JSON".to_string(),
        };
        ApiError::InvalidRequest(what)
    })
}

impl<T: DeserializeOwned + 'static> FromRequest for Json<T> {
    type Error = ApiError;
    type Future = Boxed<Self>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let req = req.clone();
        let payload = payload.take();
        Box::pin(async move {
            body_kind(&req, false)?;
            let bytes = read_body(&req, payload).await?;
            parse_json(&bytes).map(Json)
        })
    }
}

impl<T: DeserializeOwned + 'static> FromRequest for OptionalJson<T> {
    type Error = ApiError;
    type Future = Boxed<Self>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let req = req.clone();
        let payload = payload.take();
        Box::pin(async move {
            let bytes = read_body(&req, payload).await?;
            if bytes.iter().all(u8::is_ascii_whitespace) {
                return Ok(OptionalJson(None));
            }
            body_kind(&req, false)?;
            parse_json(&bytes).map(|v| OptionalJson(Some(v)))
        })
    }
}

impl<T: DeserializeOwned + 'static> FromRequest for JsonOrForm<T> {
    type Error = ApiError;
    type Future = Boxed<Self>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let req = req.clone();
        let payload = payload.take();
        Box::pin(async move {
            let kind = body_kind(&req, true)?;
            let bytes = read_body(&req, payload).await?;
            match kind {
                BodyKind::Json => parse_json(&bytes).map(JsonOrForm),
                BodyKind::Form => serde_urlencoded::from_bytes(&bytes)
                    .map(JsonOrForm)
                    .map_err(|_| ApiError::InvalidRequest("the form body is invalid".into())),
            }
        })
    }
}

/// The raw bearer token of the `Authorization` header.
pub fn bearer_token(req: &HttpRequest) -> Result<&str, ApiError> {
    let value = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .ok_or(Error::InvalidToken("an access token is required"))?;
    let (scheme, token) = value
        .split_once(' ')
        .ok_or(Error::InvalidToken("use Authorization: Bearer <token>"))?;
    if !scheme.eq_ignore_ascii_case("bearer") || token.trim().is_empty() {
        return Err(Error::InvalidToken("use Authorization: Bearer <token>").into());
    }
    Ok(token.trim())
}

fn app_state(req: &HttpRequest) -> web::Data<AppState> {
    req.app_data::<web::Data<AppState>>()
        .expect("AppState is registered")
        .clone()
}

/// `Authorization: Bearer <access token>` of a session that has not ended.
impl FromRequest for Authenticated {
    type Error = ApiError;
    type Future = Boxed<Self>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let state = app_state(req);
        let token = bearer_token(req).map(str::to_string);
        Box::pin(async move { Ok(state.services.validation.authenticate(&token?).await?) })
    }
}

/// Marks an endpoint whose answer sets the refresh cookie. In cookie mode its request must pass
/// the cookie-mode checks (allowed `Origin`, JSON content type) before anything else runs, so a
/// cross-site form can neither plant a cookie nor replace the victim's (403 `forbidden`).
pub struct SetsRefreshCookie;

impl FromRequest for SetsRefreshCookie {
    type Error = ApiError;
    type Future = std::future::Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let state = app_state(req);
        let settings = &state.settings;
        let checked = if settings.cookies.enabled {
            crate::http::cookies::check_cookie_request(req, settings)
        } else {
            Ok(())
        };
        std::future::ready(checked.map(|()| SetsRefreshCookie))
    }
}

/// A trusted backend, authenticated by a service key (`Authorization: Bearer sk_…`).
pub struct ServiceClient(pub Caller);

impl FromRequest for ServiceClient {
    type Error = ApiError;
    type Future = Boxed<Self>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let state = app_state(req);
        let key = bearer_token(req).map(str::to_string);
        Box::pin(async move {
            let invalid = || ApiError::from(Error::InvalidClient);
            let key = key.map_err(|_| invalid())?;
            let caller = state
                .services
                .validation
                .service_caller(&key)
                .await
                .ok_or_else(invalid)?;
            Ok(ServiceClient(caller))
        })
    }
}

impl ServiceClient {
    pub fn require(&self, scope: Scope) -> Result<(), ApiError> {
        if self.0.has(scope) {
            Ok(())
        } else {
            Err(Error::Forbidden("this service key lacks the required scope").into())
        }
    }
}

/// The caller's user agent and address. With `trust_proxy`, the client address our proxies
/// vouch for (`http::client_ip`); otherwise the TCP peer, since a client can write any header
/// it likes.
pub fn client_info(req: &HttpRequest, server: &ServerSettings) -> ClientInfo {
    let user_agent = req
        .headers()
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .map(|ua| ua.chars().take(MAX_USER_AGENT).collect());
    let lines = req
        .headers()
        .get_all("x-forwarded-for")
        // A line that is not text cannot be read as addresses; it counts as an entry that
        // stops the walk, as garbage does.
        .map(|v| v.to_str().unwrap_or("?"));
    let peer = req.peer_addr().map(|a| a.ip());
    let trust = ProxyTrust {
        enabled: server.trust_proxy,
        hops: server.proxy_hops,
        trusted: &server.trusted_proxies,
    };
    let ip = client_ip(trust, lines, peer);
    ClientInfo {
        user_agent,
        ip_address: ip.map(|ip| ip.to_string()),
    }
}

/// The calling client, as [`client_info`] reads it.
pub struct Client(pub ClientInfo);

impl FromRequest for Client {
    type Error = ApiError;
    type Future = std::future::Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        // Read once per request, by the root span (`request_span`), when it ran.
        let known = req.extensions().get::<ClientInfo>().cloned();
        let client = known.unwrap_or_else(|| client_info(req, &app_state(req).settings.server));
        std::future::ready(Ok(Client(client)))
    }
}
