//! Runs `examples/protected_api` (its route code, compiled into this test) against a real
//! sessiond: introspection sees a logout at once; JWKS-only verification does not.

#[path = "../../examples/protected_api/service.rs"]
mod service;

use std::sync::RwLock;

use actix_web::{App, HttpServer, web};
use reqwest::StatusCode;
use secrecy::SecretString;
use serde_json::Value;
use sessiond::config::ConfiguredKey;
use sessiond::credentials::service_keys::Scope;

use crate::helpers::spawn_app_with;

const KEY: &str = "sk_example_backend_key";

#[tokio::test]
async fn the_example_backend_validates_through_sessiond() {
    let sessiond = spawn_app_with(|s| {
        s.service_keys = vec![ConfiguredKey {
            name: "example".into(),
            secret: Some(SecretString::from(KEY)),
            sha256: None,
            scopes: vec![Scope::Introspect],
        }]
    })
    .await;
    let client = web::Data::new(service::Sessiond {
        base_url: sessiond.address.clone(),
        service_key: KEY.into(),
        issuer: "http://localhost:8080".into(),
        audience: "sessiond".into(),
        http: reqwest::Client::new(),
        jwks: RwLock::new(None),
    });
    let server = HttpServer::new(move || {
        App::new()
            .app_data(client.clone())
            .configure(service::routes)
    })
    .workers(1)
    .bind(("127.0.0.1", 0))
    .unwrap();
    let backend = format!("http://{}", server.addrs()[0]);
    let server = server.run();
    let handle = server.handle();
    tokio::spawn(server);
    let http = reqwest::Client::new();
    let get = |path: &str, token: Option<&str>| {
        let request = http.get(format!("{backend}{path}"));
        match token {
            Some(token) => request.bearer_auth(token),
            None => request,
        }
        .send()
    };

    let session = sessiond.new_user().await;
    for path in ["/hello", "/hello-local"] {
        let response = get(path, Some(&session.access_token)).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["hello"], session.user_id.as_str());
        assert_eq!(
            get(path, None).await.unwrap().status(),
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(
            get(path, Some("forged.token.x")).await.unwrap().status(),
            StatusCode::UNAUTHORIZED
        );
    }

    sessiond.logout(&session.access_token, None).await;
    let introspected = get("/hello", Some(&session.access_token)).await.unwrap();
    assert_eq!(
        introspected.status(),
        StatusCode::UNAUTHORIZED,
        "introspection sees the logout"
    );
    let local = get("/hello-local", Some(&session.access_token))
        .await
        .unwrap();
    assert_eq!(
        local.status(),
        StatusCode::OK,
        "JWKS-only checks cannot see a logout"
    );
    handle.stop(false).await;
}
