//! Passkeys (`../shared/API.md`, "Second factors, passkeys and step-up"), answered by the
//! software authenticator in `authenticator.rs`: registration, discoverable sign-in, the list
//! with `last_used_at`, deletion (never the last way in), a guest that becomes permanent with
//! no email, re-authentication with a passkey, and the refusals: a spent or expired challenge,
//! another page's origin, a counter that goes backwards.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::authenticator::Authenticator;
use crate::helpers::{STRONG_PASSWORD, Session, TestApp, assert_error, claims_of, spawn_app};

async fn post_bearer(app: &TestApp, path: &str, token: &str, body: Value) -> reqwest::Response {
    app.post(path)
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap()
}

async fn json_of(response: reqwest::Response, status: StatusCode) -> Value {
    assert_eq!(response.status(), status);
    response.json().await.unwrap()
}

/// Registers a passkey for the session's user on `device`; returns the server's entry.
async fn register(app: &TestApp, token: &str, device: &mut Authenticator, name: &str) -> Value {
    let started = post_bearer(
        app,
        "/v1/passkeys/register/start",
        token,
        json!({ "name": name }),
    )
    .await;
    let started = json_of(started, StatusCode::OK).await;
    let selection = &started["options"]["publicKey"]["authenticatorSelection"];
    assert_eq!(selection["residentKey"], "required", "{started}");
    let credential = device.register(&started["options"]);
    let body = json!({ "challenge_id": started["challenge_id"], "credential": credential });
    json_of(
        post_bearer(app, "/v1/passkeys/register/finish", token, body).await,
        StatusCode::CREATED,
    )
    .await
}

async fn sign_in_start(app: &TestApp) -> Value {
    let started = app.post("/v1/login/passkey/start").send().await.unwrap();
    json_of(started, StatusCode::OK).await
}

/// Signs in with `device`'s credential `index`.
async fn sign_in(app: &TestApp, device: &mut Authenticator, index: usize) -> reqwest::Response {
    let started = sign_in_start(app).await;
    let credential = device.assert(&started["options"], index);
    let body = json!({ "challenge_id": started["challenge_id"], "credential": credential });
    app.post_json("/v1/login/passkey/finish", &body).await
}

async fn passkeys_of(app: &TestApp, token: &str) -> Vec<Value> {
    let listed = app
        .get("/v1/passkeys")
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let listed = json_of(listed, StatusCode::OK).await;
    listed["passkeys"].as_array().unwrap().clone()
}

async fn delete_passkey(app: &TestApp, token: &str, id: &str) -> reqwest::Response {
    app.client
        .delete(app.url(&format!("/v1/passkeys/{id}")))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_registered_passkey_signs_in_on_a_fresh_page_with_two_factors_worth() {
    let app = spawn_app().await;
    let ann = app.new_user().await;
    let mut phone = Authenticator::new();

    let entry = register(&app, &ann.access_token, &mut phone, "Ann's phone").await;
    assert_eq!(entry["name"], "Ann's phone");
    let listed = passkeys_of(&app, &ann.access_token).await;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["id"], entry["id"]);
    assert_eq!(listed[0]["last_used_at"], Value::Null);

    let started = sign_in_start(&app).await;
    assert_eq!(
        started["options"]["mediation"], "conditional",
        "autofill: {started}"
    );
    let credential = phone.assert(&started["options"], 0);
    let body = json!({ "challenge_id": started["challenge_id"], "credential": credential });
    let signed_in = app.post_json("/v1/login/passkey/finish", &body).await;
    let session = Session::from_body(json_of(signed_in, StatusCode::OK).await);

    assert_eq!(session.user_id, ann.user_id);
    let claims = claims_of(&session.access_token);
    assert_eq!(claims["amr"], json!(["hwk", "user"]));
    assert_eq!(claims["acr"], "2");
    let listed = passkeys_of(&app, &ann.access_token).await;
    let used = sessiond::clock::rfc3339(app.core.clock.now());
    assert_eq!(listed[0]["last_used_at"], used.as_str());
    assert!(listed[0]["created_at"].as_str().unwrap().ends_with('Z'));
    // The challenge was spent by its first use.
    let replayed = app.post_json("/v1/login/passkey/finish", &body).await;
    assert_error(replayed, StatusCode::BAD_REQUEST, "invalid_grant").await;
}

#[tokio::test]
async fn a_guest_becomes_a_permanent_passkey_user_in_place_with_no_email() {
    let app = spawn_app().await;
    let guest = app.guest().await;
    assert_eq!(guest.body["user"]["is_guest"], true);
    let mut laptop = Authenticator::new();
    // No fresh authentication asked of a guest: it has nothing else to prove itself with.
    app.advance_clock(400);

    register(&app, &guest.access_token, &mut laptop, "Laptop").await;

    let refreshed = app.refresh_ok(&guest.refresh_token).await;
    assert_eq!(refreshed.user_id, guest.user_id, "the same user, in place");
    assert_eq!(refreshed.body["user"]["is_guest"], false);
    assert_eq!(refreshed.body["user"]["email"], Value::Null);
    assert_eq!(claims_of(&refreshed.access_token)["is_guest"], false);
    let signed_in = sign_in(&app, &mut laptop, 0).await;
    let session = Session::from_body(json_of(signed_in, StatusCode::OK).await);
    assert_eq!(session.user_id, guest.user_id);
    let trail = app.store.audit_events(None, 20).await.unwrap();
    let registered = trail
        .iter()
        .find(|e| e.kind == "passkey_registered")
        .unwrap();
    assert_eq!(registered.detail["guest_upgraded"], true);

    // A passkey-only account has no password, and is told so.
    let change =
        json!({ "current_password": STRONG_PASSWORD, "new_password": "x horse battery 99" });
    let refused = app.change_password(&session.access_token, &change).await;
    let body = assert_error(refused, StatusCode::FORBIDDEN, "forbidden").await;
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("no password")
    );
    let reauth = post_bearer(
        &app,
        "/v1/reauth",
        &session.access_token,
        json!({ "password": STRONG_PASSWORD }),
    )
    .await;
    assert_error(reauth, StatusCode::FORBIDDEN, "forbidden").await;
}

#[tokio::test]
async fn the_last_way_to_sign_in_cannot_be_deleted_and_deleting_needs_a_fresh_session() {
    let app = spawn_app().await;
    let guest = app.guest().await;
    let mut device = Authenticator::new();
    let first = register(&app, &guest.access_token, &mut device, "First").await;
    let session =
        Session::from_body(json_of(sign_in(&app, &mut device, 0).await, StatusCode::OK).await);
    let token = &session.access_token;

    let last = delete_passkey(&app, token, first["id"].as_str().unwrap()).await;
    assert_error(last, StatusCode::CONFLICT, "last_credential").await;
    let unknown = delete_passkey(&app, token, "01940000-0000-7000-8000-000000000000").await;
    assert_error(unknown, StatusCode::NOT_FOUND, "not_found").await;
    let other = app.new_user().await;
    let foreign = delete_passkey(&app, &other.access_token, first["id"].as_str().unwrap()).await;
    assert_error(foreign, StatusCode::NOT_FOUND, "not_found").await;

    let second = register(&app, token, &mut device, "Second").await;
    app.advance_clock(301);
    let stale = delete_passkey(&app, token, first["id"].as_str().unwrap()).await;
    let challenge = stale.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_string();
    assert_error(
        stale,
        StatusCode::UNAUTHORIZED,
        "insufficient_user_authentication",
    )
    .await;
    assert!(
        challenge.contains("insufficient_user_authentication"),
        "{challenge}"
    );

    // Step up with the passkey itself, then delete.
    let started = sign_in_start(&app).await;
    let credential = device.assert(&started["options"], 1);
    let body = json!({ "challenge_id": started["challenge_id"], "credential": credential });
    let stepped = post_bearer(&app, "/v1/reauth", token, body).await;
    let stepped = Session::from_body(json_of(stepped, StatusCode::OK).await);
    let claims = claims_of(&stepped.access_token);
    assert_eq!(claims["auth_time"], app.core.clock.now());
    assert_eq!(claims["acr"], "2");
    let deleted = delete_passkey(&app, &stepped.access_token, first["id"].as_str().unwrap()).await;
    assert_eq!(deleted.status(), StatusCode::NO_CONTENT);
    let left = passkeys_of(&app, &stepped.access_token).await;
    assert_eq!(left.len(), 1);
    assert_eq!(left[0]["id"], second["id"]);
}

#[tokio::test]
async fn a_counter_that_goes_backwards_is_refused_and_audited() {
    let app = spawn_app().await;
    let ann = app.new_user().await;
    let mut device = Authenticator::new();
    register(&app, &ann.access_token, &mut device, "Key").await;
    for _ in 0..3 {
        assert_eq!(sign_in(&app, &mut device, 0).await.status(), StatusCode::OK);
    }
    let started = sign_in_start(&app).await;
    let cloned = device.assert_with_counter(&started["options"], 0, 2);
    let body = json!({ "challenge_id": started["challenge_id"], "credential": cloned });
    let refused = app.post_json("/v1/login/passkey/finish", &body).await;
    assert_error(refused, StatusCode::BAD_REQUEST, "invalid_grant").await;
    let trail = app.store.audit_events(None, 50).await.unwrap();
    assert!(trail.iter().any(|e| e.kind == "passkey_counter_regressed"));
}

#[tokio::test]
async fn another_origin_an_expired_challenge_and_anothers_passkey_are_refused() {
    let app = spawn_app().await;
    let ann = app.new_user().await;
    let mut device = Authenticator::new();
    register(&app, &ann.access_token, &mut device, "Key").await;
    let long_name = "n".repeat(65);
    let refused = post_bearer(
        &app,
        "/v1/passkeys/register/start",
        &ann.access_token,
        json!({ "name": long_name }),
    )
    .await;
    assert_error(refused, StatusCode::BAD_REQUEST, "invalid_request").await;

    device.origin = Some("https://evil.example".into());
    let foreign = sign_in(&app, &mut device, 0).await;
    assert_error(foreign, StatusCode::BAD_REQUEST, "invalid_grant").await;
    let trail = app.store.audit_events(None, 50).await.unwrap();
    let failed = trail
        .iter()
        .find(|e| e.kind == "credential_check_failed")
        .expect("a passkey that does not verify is audited");
    assert_eq!(failed.detail["credential"], "passkey");
    device.origin = None;

    let started = sign_in_start(&app).await;
    app.advance_clock(301);
    let credential = device.assert(&started["options"], 0);
    let body = json!({ "challenge_id": started["challenge_id"], "credential": credential });
    let expired = app.post_json("/v1/login/passkey/finish", &body).await;
    assert_error(expired, StatusCode::BAD_REQUEST, "invalid_grant").await;

    // Ann's passkey does not re-authenticate Bob's session.
    let bob = app.new_user().await;
    let started = sign_in_start(&app).await;
    let credential = device.assert(&started["options"], 0);
    let body = json!({ "challenge_id": started["challenge_id"], "credential": credential });
    let mixed = post_bearer(&app, "/v1/reauth", &bob.access_token, body).await;
    assert_error(mixed, StatusCode::BAD_REQUEST, "invalid_grant").await;

    let malformed = app
        .post_json(
            "/v1/login/passkey/finish",
            &json!({ "challenge_id": "x", "credential": { "id": 1 } }),
        )
        .await;
    assert_error(malformed, StatusCode::BAD_REQUEST, "invalid_grant").await;
}
