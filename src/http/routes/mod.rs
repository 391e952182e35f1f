//! The route table: one file per capability below, and the single list of (method, path,
//! handler) that the app is built from. The OpenAPI test reads the same list, so a route cannot
//! be served without being documented, or documented without being served.

mod accounts;
mod admin;
mod bridge;
mod discovery;
mod events;
mod factors;
mod health;
mod introspect;
mod logout;
mod me;
mod passkeys;
mod password;
mod recovery;
mod refresh;
mod revoke;
mod sessions;
mod upgrade;
mod ws_tickets;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::Method;
use actix_web::http::header::{self, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{HttpResponse, ResponseError, Route, web};

use crate::error::Error;
use crate::http::error::ApiError;

pub struct RouteSpec {
    pub method: Method,
    pub path: &'static str,
    pub route: Route,
}

fn spec(method: Method, path: &'static str, route: Route) -> RouteSpec {
    RouteSpec {
        method,
        path,
        route,
    }
}

/// Every route the service answers.
pub fn table() -> Vec<RouteSpec> {
    use Method as M;
    vec![
        spec(M::POST, "/v1/signup", web::post().to(accounts::signup)),
        spec(M::POST, "/v1/login", web::post().to(accounts::login)),
        spec(M::POST, "/v1/login/mfa", web::post().to(factors::login_mfa)),
        spec(
            M::POST,
            "/v1/mfa/totp",
            web::post().to(factors::enroll_totp),
        ),
        spec(
            M::POST,
            "/v1/mfa/totp/confirm",
            web::post().to(factors::confirm_totp),
        ),
        spec(
            M::DELETE,
            "/v1/mfa/totp",
            web::delete().to(factors::disable_totp),
        ),
        spec(
            M::POST,
            "/v1/passkeys/register/start",
            web::post().to(passkeys::register_start),
        ),
        spec(
            M::POST,
            "/v1/passkeys/register/finish",
            web::post().to(passkeys::register_finish),
        ),
        spec(M::GET, "/v1/passkeys", web::get().to(passkeys::list)),
        spec(
            M::DELETE,
            "/v1/passkeys/{id}",
            web::delete().to(passkeys::delete),
        ),
        spec(
            M::POST,
            "/v1/login/passkey/start",
            web::post().to(passkeys::login_start),
        ),
        spec(
            M::POST,
            "/v1/login/passkey/finish",
            web::post().to(passkeys::login_finish),
        ),
        spec(M::POST, "/v1/guest", web::post().to(accounts::guest)),
        spec(M::POST, "/v1/upgrade", web::post().to(upgrade::upgrade)),
        spec(
            M::POST,
            "/v1/token/refresh",
            web::post().to(refresh::refresh),
        ),
        spec(M::POST, "/v1/logout", web::post().to(logout::logout)),
        spec(M::GET, "/v1/me", web::get().to(me::me)),
        spec(M::DELETE, "/v1/me", web::delete().to(recovery::delete_me)),
        spec(
            M::POST,
            "/v1/email/verify/send",
            web::post().to(recovery::send_verification),
        ),
        spec(
            M::POST,
            "/v1/email/verify",
            web::post().to(recovery::verify_email),
        ),
        spec(
            M::POST,
            "/v1/password/forgot",
            web::post().to(recovery::forgot_password),
        ),
        spec(
            M::POST,
            "/v1/password/reset",
            web::post().to(recovery::reset_password),
        ),
        spec(
            M::POST,
            "/v1/login/email",
            web::post().to(recovery::request_sign_in),
        ),
        spec(
            M::POST,
            "/v1/login/email/verify",
            web::post().to(recovery::verify_sign_in),
        ),
        spec(
            M::POST,
            "/v1/email/change",
            web::post().to(recovery::change_email),
        ),
        spec(
            M::POST,
            "/v1/email/change/confirm",
            web::post().to(recovery::confirm_email_change),
        ),
        spec(M::POST, "/v1/reauth", web::post().to(recovery::reauth)),
        spec(M::GET, "/v1/sessions", web::get().to(sessions::list)),
        spec(
            M::DELETE,
            "/v1/sessions/{id}",
            web::delete().to(sessions::revoke),
        ),
        spec(M::POST, "/v1/password", web::post().to(password::change)),
        spec(M::POST, "/v1/revoke", web::post().to(revoke::revoke)),
        spec(M::POST, "/v1/bridge", web::post().to(bridge::bridge)),
        spec(M::POST, "/v1/ws-tickets", web::post().to(ws_tickets::issue)),
        spec(
            M::POST,
            "/v1/introspect",
            web::post().to(introspect::introspect),
        ),
        spec(
            M::POST,
            "/v1/ws-tickets/redeem",
            web::post().to(ws_tickets::redeem),
        ),
        spec(
            M::GET,
            "/v1/admin/users/{id}/sessions",
            web::get().to(admin::sessions),
        ),
        spec(
            M::POST,
            "/v1/admin/users/{id}/revoke-sessions",
            web::post().to(admin::revoke_sessions),
        ),
        spec(
            M::POST,
            "/v1/admin/users/{id}/disable",
            web::post().to(admin::disable_user),
        ),
        spec(
            M::POST,
            "/v1/admin/users/{id}/enable",
            web::post().to(admin::enable_user),
        ),
        spec(
            M::DELETE,
            "/v1/admin/users/{id}",
            web::delete().to(admin::delete_user),
        ),
        spec(
            M::DELETE,
            "/v1/admin/users/{id}/throttle",
            web::delete().to(admin::clear_throttle),
        ),
        spec(
            M::GET,
            "/v1/admin/audit",
            web::get().to(admin::audit_events),
        ),
        spec(M::GET, "/v1/events", web::get().to(events::events)),
        spec(
            M::GET,
            "/.well-known/jwks.json",
            web::get().to(discovery::jwks),
        ),
        spec(
            M::GET,
            "/.well-known/openid-configuration",
            web::get().to(discovery::openid_configuration),
        ),
        spec(M::GET, "/healthz", web::get().to(health::healthz)),
        spec(M::GET, "/readyz", web::get().to(health::readyz)),
        spec(M::GET, "/openapi.yaml", web::get().to(discovery::openapi)),
        spec(
            M::GET,
            "/metrics",
            web::get().to(crate::http::metrics::export),
        ),
    ]
}

/// Registers the table, grouping methods by path so that a known path with another method
/// answers 405 and an unknown path 404, both as contract JSON errors.
pub fn configure(cfg: &mut web::ServiceConfig) {
    let mut by_path: Vec<(&'static str, Vec<Method>, Vec<Route>)> = Vec::new();
    for RouteSpec {
        method,
        path,
        route,
    } in table()
    {
        match by_path.iter_mut().find(|(p, _, _)| *p == path) {
            Some((_, methods, routes)) => {
                methods.push(method);
                routes.push(route);
            }
            None => by_path.push((path, vec![method], vec![route])),
        }
    }
    for (path, methods, routes) in by_path {
        let allow = allow_header(&methods);
        let mut resource =
            web::resource(path).default_service(web::to(move || method_not_allowed(allow.clone())));
        for route in routes {
            resource = resource.route(route);
        }
        cfg.service(resource);
    }
}

/// The `Allow` header of a path (RFC 9110 §10.2.1): its methods, and HEAD wherever GET is
/// (see [`head_as_get`]).
fn allow_header(methods: &[Method]) -> HeaderValue {
    let mut names: Vec<&str> = methods.iter().map(Method::as_str).collect();
    if methods.contains(&Method::GET) {
        names.push("HEAD");
    }
    HeaderValue::from_str(&names.join(", ")).expect("method names are header-safe")
}

/// Middleware: a HEAD request is answered as the GET it asks about (RFC 9110 §9.3.2); the
/// HTTP layer sends the headers and leaves the body out.
pub async fn head_as_get(
    mut req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    if req.method() == Method::HEAD {
        req.head_mut().method = Method::GET;
    }
    next.call(req).await
}

pub async fn not_found() -> Result<HttpResponse, ApiError> {
    Err(Error::NotFound("no such route").into())
}

async fn method_not_allowed(allow: HeaderValue) -> Result<HttpResponse, actix_web::Error> {
    let mut response = ApiError::MethodNotAllowed.error_response();
    response.headers_mut().insert(header::ALLOW, allow);
    Ok(response)
}
