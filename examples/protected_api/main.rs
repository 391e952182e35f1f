//! A backend that protects its routes with sessiond. Run sessiond, create a key
//! (`sessiond service-keys create demo --scope introspect`), then:
//!
//! ```sh
//! SESSIOND_URL=http://localhost:8080 SESSIOND_SERVICE_KEY=sk_… cargo run --example protected_api
//! curl localhost:3000/hello -H "authorization: Bearer $ACCESS"
//! ```

mod service;

use std::sync::RwLock;

use actix_web::{App, HttpServer, web};

#[actix_web::main]
async fn main() -> std::io::Result<()> {
    let base_url = std::env::var("SESSIOND_URL").unwrap_or_else(|_| "http://localhost:8080".into());
    let sessiond = web::Data::new(service::Sessiond {
        issuer: std::env::var("SESSIOND_ISSUER").unwrap_or_else(|_| base_url.clone()),
        audience: std::env::var("SESSIOND_AUDIENCE").unwrap_or_else(|_| "sessiond".into()),
        service_key: std::env::var("SESSIOND_SERVICE_KEY").expect("set SESSIOND_SERVICE_KEY"),
        base_url,
        http: reqwest::Client::new(),
        jwks: RwLock::new(None),
    });
    let port: u16 = std::env::var("PORT")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(3000);
    HttpServer::new(move || {
        App::new()
            .app_data(sessiond.clone())
            .configure(service::routes)
    })
    .bind(("127.0.0.1", port))?
    .run()
    .await
}
