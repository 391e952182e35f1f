//! Another team's backend, protecting its routes with sessiond in the two ways it can:
//! - `/hello` asks sessiond (`POST /v1/introspect` with a service key): exact, sees a logout at
//!   once, costs one fast local round trip per request;
//! - `/hello-local` verifies the JWT itself with sessiond's JWKS: no round trip, but a logged-out
//!   token stays valid here until it expires (15 minutes by default).

use std::sync::RwLock;

use actix_web::{HttpRequest, HttpResponse, web};
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use serde_json::{Value, json};

pub struct Sessiond {
    pub base_url: String,
    pub service_key: String,
    pub issuer: String,
    pub audience: String,
    pub http: reqwest::Client,
    pub jwks: RwLock<Option<JwkSet>>,
}

#[derive(Debug, Deserialize)]
pub struct Principal {
    pub sub: String,
    pub sid: String,
}

impl Sessiond {
    /// RFC 7662 introspection: `Some` only for a live session's token.
    pub async fn introspect(&self, token: &str) -> Result<Option<Principal>, reqwest::Error> {
        let answer: Value = self
            .http
            .post(format!("{}/v1/introspect", self.base_url))
            .bearer_auth(&self.service_key)
            .form(&[("token", token)])
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        if answer["active"] != true {
            return Ok(None);
        }
        Ok(serde_json::from_value(answer).ok())
    }

    /// Local verification with the JWKS (fetched once, refetched when a `kid` is unknown).
    pub async fn verify_locally(&self, token: &str) -> Result<Option<Principal>, reqwest::Error> {
        let Ok(header) = jsonwebtoken::decode_header(token) else {
            return Ok(None);
        };
        let Some(kid) = header.kid else {
            return Ok(None);
        };
        let mut key = self.key_for(&kid);
        if key.is_none() {
            let fresh: JwkSet = self
                .http
                .get(format!("{}/.well-known/jwks.json", self.base_url))
                .send()
                .await?
                .json()
                .await?;
            *self.jwks.write().unwrap() = Some(fresh);
            key = self.key_for(&kid);
        }
        let Some(key) = key else {
            return Ok(None);
        };
        let mut validation = Validation::new(Algorithm::ES256);
        validation.set_issuer(&[&self.issuer]);
        validation.set_audience(&[&self.audience]);
        Ok(jsonwebtoken::decode::<Principal>(token, &key, &validation)
            .ok()
            .map(|data| data.claims))
    }

    fn key_for(&self, kid: &str) -> Option<DecodingKey> {
        let jwks = self.jwks.read().unwrap();
        let jwk = jwks.as_ref()?.find(kid)?;
        DecodingKey::from_jwk(jwk).ok()
    }
}

fn bearer(req: &HttpRequest) -> Option<&str> {
    req.headers()
        .get("authorization")?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
}

fn unauthorized() -> HttpResponse {
    HttpResponse::Unauthorized().json(json!({"error": "unauthorized"}))
}

fn hello(principal: Principal, how: &str) -> HttpResponse {
    HttpResponse::Ok()
        .json(json!({"hello": principal.sub, "session": principal.sid, "checked_by": how}))
}

async fn hello_introspected(req: HttpRequest, sessiond: web::Data<Sessiond>) -> HttpResponse {
    let Some(token) = bearer(&req) else {
        return unauthorized();
    };
    match sessiond.introspect(token).await {
        Ok(Some(principal)) => hello(principal, "introspection"),
        Ok(None) => unauthorized(),
        Err(_) => HttpResponse::ServiceUnavailable().json(json!({"error": "auth unavailable"})),
    }
}

async fn hello_local(req: HttpRequest, sessiond: web::Data<Sessiond>) -> HttpResponse {
    let Some(token) = bearer(&req) else {
        return unauthorized();
    };
    match sessiond.verify_locally(token).await {
        Ok(Some(principal)) => hello(principal, "jwks"),
        Ok(None) => unauthorized(),
        Err(_) => HttpResponse::ServiceUnavailable().json(json!({"error": "auth unavailable"})),
    }
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/hello", web::get().to(hello_introspected))
        .route("/hello-local", web::get().to(hello_local));
}
