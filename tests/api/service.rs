//! Helpers for the service endpoints (introspection, WebSocket tickets, admin): apps with
//! configured service keys, keys created the CLI way, and requests authenticated by a key.

use std::time::{Duration, Instant};

use reqwest::header::CACHE_CONTROL;
use reqwest::{RequestBuilder, Response, StatusCode};
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};
use sessiond::config::ConfiguredKey;
use sessiond::config::Settings;
use sessiond::credentials::service_keys::Scope;

use crate::helpers::{TestApp, spawn_app_with};

/// A configured key with only the `introspect` scope.
pub const INTROSPECT_KEY: &str = "sk_test_introspect";
/// A configured key with only the `admin` scope.
pub const ADMIN_KEY: &str = "sk_test_admin";
/// A configured key with only the `events` scope.
pub const EVENTS_KEY: &str = "sk_test_events";

fn configured(name: &str, secret: &str, scopes: Vec<Scope>) -> ConfiguredKey {
    ConfiguredKey {
        name: name.into(),
        secret: Some(SecretString::from(secret.to_string())),
        sha256: None,
        scopes,
    }
}

/// The configured keys every service test uses: one per scope.
pub fn test_keys() -> Vec<ConfiguredKey> {
    vec![
        configured("api", INTROSPECT_KEY, vec![Scope::Introspect]),
        configured("backoffice", ADMIN_KEY, vec![Scope::Admin]),
        configured("feed", EVENTS_KEY, vec![Scope::Events]),
    ]
}

pub fn with_test_keys(settings: &mut Settings) {
    settings.service_keys = test_keys();
}

/// An app that knows [`INTROSPECT_KEY`] and [`ADMIN_KEY`].
pub async fn spawn_service_app() -> TestApp {
    spawn_app_with(with_test_keys).await
}

/// Creates a key the way `sessiond service-keys create` does: straight into the table of the
/// running app's database. Returns the key to present.
pub async fn create_cli_key(app: &TestApp, name: &str, scopes: &[Scope]) -> String {
    let (key, row) =
        sessiond::credentials::service_keys::generate(name, scopes, crate::helpers::system_now());
    let inserted = app.store.insert_service_key(&row).await.unwrap();
    assert!(inserted, "the key name {name} is free");
    key.expose_secret().to_string()
}

/// Sends the request built by `build` until it is not 401, for at most 5 s: an instance
/// re-reads the key table on an unknown key at most once a second, so a key created within a
/// second of start-up (or of the previous re-read) is recognised on a later attempt.
pub async fn until_key_known(build: impl Fn() -> RequestBuilder) -> Response {
    let start = Instant::now();
    loop {
        let response = build().send().await.unwrap();
        if response.status() != StatusCode::UNAUTHORIZED || start.elapsed() > Duration::from_secs(5)
        {
            return response;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn with_key(request: RequestBuilder, key: Option<&str>) -> RequestBuilder {
    match key {
        Some(key) => request.bearer_auth(key),
        None => request,
    }
}

/// `POST /v1/introspect` with a form body (`token=...`), as RFC 7662 clients send it.
pub fn introspect_request(app: &TestApp, key: Option<&str>, token: &str) -> RequestBuilder {
    with_key(app.post("/v1/introspect"), key).form(&[("token", token)])
}

pub async fn introspect(app: &TestApp, key: Option<&str>, token: &str) -> Response {
    introspect_request(app, key, token).send().await.unwrap()
}

/// `POST /v1/introspect` with a JSON body.
pub async fn introspect_json(app: &TestApp, key: Option<&str>, body: &Value) -> Response {
    with_key(app.post("/v1/introspect"), key)
        .json(body)
        .send()
        .await
        .unwrap()
}

/// `POST /v1/ws-tickets/redeem`.
pub async fn redeem(app: &TestApp, key: Option<&str>, ticket: &str) -> Response {
    with_key(app.post("/v1/ws-tickets/redeem"), key)
        .json(&json!({ "ticket": ticket }))
        .send()
        .await
        .unwrap()
}

/// Issues a WebSocket ticket for the session of `access_token`; panics unless it is 201.
pub async fn issue_ticket(app: &TestApp, access_token: &str) -> String {
    let response = app
        .post("/v1/ws-tickets")
        .bearer_auth(access_token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let body: Value = response.json().await.unwrap();
    body["ticket"].as_str().expect("a ticket").to_string()
}

/// A request to the admin API with `key`.
pub fn admin(
    app: &TestApp,
    method: reqwest::Method,
    path: &str,
    key: Option<&str>,
) -> RequestBuilder {
    with_key(app.client.request(method, app.url(path)), key)
}

/// Reads a 200 introspection-style answer, checks it is not cacheable, and returns the body.
pub async fn no_store_json(response: Response) -> Value {
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response
            .headers()
            .get(CACHE_CONTROL)
            .and_then(|v| v.to_str().ok()),
        Some("no-store")
    );
    response.json().await.expect("a JSON body")
}

/// The answer must be exactly `{"active": false}`, nothing else.
pub async fn assert_inactive(response: Response) {
    let body = no_store_json(response).await;
    assert_eq!(body, json!({ "active": false }));
}

/// The answer must be `{"active": true, ...}`; returns the body.
pub async fn assert_active(response: Response) -> Value {
    let body = no_store_json(response).await;
    assert_eq!(body["active"], true, "{body}");
    body
}

/// The types of a user's audit events, newest first, read with [`ADMIN_KEY`].
pub async fn audit_types(app: &TestApp, user_id: &str) -> Vec<String> {
    let path = format!("/v1/admin/audit?user_id={user_id}");
    let response = admin(app, reqwest::Method::GET, &path, Some(ADMIN_KEY))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    body["events"]
        .as_array()
        .expect("an events array")
        .iter()
        .map(|e| e["type"].as_str().unwrap().to_string())
        .collect()
}
