//! `POST /v1/upgrade`: a guest becomes a permanent user in place.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{
    STRONG_PASSWORD, Session, TestApp, assert_error, spawn_app, spawn_on, within,
};

async fn upgrade(
    app: &TestApp,
    access_token: &str,
    email: &str,
    password: &str,
) -> reqwest::Response {
    app.post("/v1/upgrade")
        .bearer_auth(access_token)
        .json(&json!({"email": email, "password": password}))
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_guest_becomes_permanent_with_the_same_user_and_session() {
    let app = spawn_app().await;
    let guest = app.guest().await;

    let response = upgrade(
        &app,
        &guest.access_token,
        "Ann@Example.com",
        STRONG_PASSWORD,
    )
    .await;

    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["cache-control"], "no-store");
    let upgraded = Session::from_body(response.json().await.unwrap());
    assert_eq!(upgraded.user_id, guest.user_id);
    assert_eq!(upgraded.session_id, guest.session_id);
    assert_eq!(upgraded.body["user"]["is_guest"], false);
    assert_eq!(upgraded.body["user"]["email"], "ann@example.com");

    let me: Value = app.me(&upgraded.access_token).await.json().await.unwrap();
    assert_eq!(me["user"]["is_guest"], false);
    assert_eq!(me["session"]["kind"], "password");
    let expires = me["session"]["expires_at"].as_i64().unwrap();
    assert!(
        expires - crate::helpers::system_now() > 29 * 24 * 3600,
        "now a 30-day session"
    );

    let login = app.login("ann@example.com", STRONG_PASSWORD).await;
    let login: Value = login.json().await.unwrap();
    assert_eq!(login["user"]["id"], guest.user_id.as_str());
    assert_eq!(
        app.refresh(&upgraded.refresh_token).await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn upgrading_to_a_taken_email_is_409_and_leaves_the_guest_a_guest() {
    let app = spawn_app().await;
    app.new_user_with_email("taken@example.com").await;
    let guest = app.guest().await;
    let response = upgrade(
        &app,
        &guest.access_token,
        "TAKEN@example.com",
        STRONG_PASSWORD,
    )
    .await;
    assert_error(response, StatusCode::CONFLICT, "email_taken").await;
    let me: Value = app.me(&guest.access_token).await.json().await.unwrap();
    assert_eq!(me["user"]["is_guest"], true);
    assert_eq!(me["user"]["email"], Value::Null);
}

#[tokio::test]
async fn only_guests_can_upgrade_and_input_is_validated() {
    let app = spawn_app().await;
    let member = app.new_user().await;
    let response = upgrade(
        &app,
        &member.access_token,
        "other@example.com",
        STRONG_PASSWORD,
    )
    .await;
    assert_error(response, StatusCode::FORBIDDEN, "forbidden").await;

    let guest = app.guest().await;
    let weak = upgrade(&app, &guest.access_token, "g@example.com", "password").await;
    assert_error(weak, StatusCode::UNPROCESSABLE_ENTITY, "weak_password").await;
    let bad_email = upgrade(&app, &guest.access_token, "not-an-email", STRONG_PASSWORD).await;
    assert_error(bad_email, StatusCode::UNPROCESSABLE_ENTITY, "invalid_email").await;
    let anonymous = app
        .post("/v1/upgrade")
        .json(&json!({"email": "g@example.com", "password": STRONG_PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_error(anonymous, StatusCode::UNAUTHORIZED, "invalid_token").await;
    // Still a guest after the refused attempts.
    let me: Value = app.me(&guest.access_token).await.json().await.unwrap();
    assert_eq!(me["user"]["is_guest"], true);
}

#[tokio::test]
async fn another_instance_sees_the_upgrade_within_a_second() {
    let a = spawn_app().await;
    let b = spawn_on(a.db.clone(), |_| {}).await;
    crate::helpers::until_listening(&b).await;
    let guest = a.guest().await;
    let me: Value = b.me(&guest.access_token).await.json().await.unwrap();
    assert_eq!(me["user"]["is_guest"], true);

    let response = upgrade(&a, &guest.access_token, "ann@example.com", STRONG_PASSWORD).await;
    assert_eq!(response.status(), StatusCode::OK);

    let b = &b;
    let token = guest.access_token.as_str();
    let upgraded = within(Duration::from_secs(1), move || async move {
        let me: Value = b.me(token).await.json().await.unwrap();
        if me["user"]["is_guest"] == false {
            assert_eq!(me["user"]["email"], "ann@example.com");
            return true;
        }
        false
    })
    .await;
    assert!(upgraded, "B still shows a guest after 1 s");
}

async fn upgrade_presenting(app: &TestApp, guest: &Session) -> Session {
    let response = app
        .post("/v1/upgrade")
        .bearer_auth(&guest.access_token)
        .json(&json!({
            "email": "ann@example.com",
            "password": STRONG_PASSWORD,
            "refresh_token": guest.refresh_token,
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    Session::from_body(response.json().await.unwrap())
}

#[tokio::test]
async fn the_upgrade_spends_the_guest_refresh_token_and_a_racing_tab_converges() {
    // Arrange: the guest's refresh token Rg, then an upgrade that presents it.
    let app = spawn_app().await;
    let guest = app.guest().await;
    let upgraded = upgrade_presenting(&app, &guest).await;
    assert_ne!(upgraded.refresh_token, guest.refresh_token);

    // Act: a second tab still holding Rg refreshes within the grace window.
    let racing = app.refresh(&guest.refresh_token).await;

    // Assert: it gets the upgrade's refresh token, not a chain of its own.
    assert_eq!(racing.status(), StatusCode::OK);
    let racing = Session::from_body(racing.json().await.unwrap());
    assert_eq!(racing.refresh_token, upgraded.refresh_token);
    assert_eq!(racing.body["user"]["is_guest"], false);

    // Once the upgrade's token has been used, Rg is a replay: the session ends.
    let next = app.refresh(&upgraded.refresh_token).await;
    assert_eq!(next.status(), StatusCode::OK);
    let next = Session::from_body(next.json().await.unwrap());
    let replay = app.refresh(&guest.refresh_token).await;
    assert_error(replay, StatusCode::UNAUTHORIZED, "refresh_token_reused").await;
    assert_eq!(
        app.me(&next.access_token).await.status(),
        StatusCode::UNAUTHORIZED
    );
    let after = app.refresh(&next.refresh_token).await;
    assert_error(after, StatusCode::UNAUTHORIZED, "session_revoked").await;
}

#[tokio::test]
async fn a_guest_refresh_token_presented_after_the_upgrade_is_reuse() {
    // Arrange: an upgrade that does not present the guest's refresh token.
    let app = crate::helpers::spawn_app_with(|s| s.sessions.refresh_grace_secs = 1).await;
    let guest = app.guest().await;
    let response = upgrade(
        &app,
        &guest.access_token,
        "ann@example.com",
        STRONG_PASSWORD,
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    let upgraded = Session::from_body(response.json().await.unwrap());

    // Within the grace window the old token is refused without punishing the session...
    let early = app.refresh(&guest.refresh_token).await;
    assert_error(early, StatusCode::UNAUTHORIZED, "invalid_refresh_token").await;
    assert_eq!(
        app.me(&upgraded.access_token).await.status(),
        StatusCode::OK
    );

    // ...and later it is a replay of a spent token, which revokes the session.
    app.advance_clock(2);
    let late = app.refresh(&guest.refresh_token).await;
    assert_error(late, StatusCode::UNAUTHORIZED, "refresh_token_reused").await;
    let after = app.refresh(&upgraded.refresh_token).await;
    assert_error(after, StatusCode::UNAUTHORIZED, "session_revoked").await;
}

#[tokio::test]
async fn an_upgrade_presenting_a_foreign_refresh_token_is_refused_and_changes_nothing() {
    let app = spawn_app().await;
    let guest = app.guest().await;
    let other = app.guest().await;
    let response = app
        .post("/v1/upgrade")
        .bearer_auth(&guest.access_token)
        .json(&json!({
            "email": "ann@example.com",
            "password": STRONG_PASSWORD,
            "refresh_token": other.refresh_token,
        }))
        .send()
        .await
        .unwrap();
    assert_error(response, StatusCode::UNAUTHORIZED, "invalid_refresh_token").await;
    let me: Value = app.me(&guest.access_token).await.json().await.unwrap();
    assert_eq!(me["user"]["is_guest"], true);
    assert_eq!(
        app.refresh(&guest.refresh_token).await.status(),
        StatusCode::OK
    );
    assert_eq!(
        app.refresh(&other.refresh_token).await.status(),
        StatusCode::OK
    );
}
