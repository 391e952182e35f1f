//! `POST /v1/token/refresh`: rotation, the grace window, reuse detection, races and expiry.

use std::collections::HashSet;

use futures::future::join_all;
use reqwest::StatusCode;
use reqwest::header::{CACHE_CONTROL, CONTENT_TYPE};
use serde_json::{Value, json};

use crate::helpers::{
    Session, assert_error, spawn_app, spawn_app_with, spawn_on, unknown_refresh_token,
};

#[tokio::test]
async fn refresh_returns_a_new_refresh_token_and_a_working_access_token() {
    // Arrange
    let app = spawn_app().await;
    let user = app.new_user().await;

    // Act
    let response = app.refresh(&user.refresh_token).await;

    // Assert
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response
            .headers()
            .get(CACHE_CONTROL)
            .and_then(|v| v.to_str().ok()),
        Some("no-store")
    );
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["token_type"], "Bearer", "{body}");
    assert!(body["expires_in"].as_i64().is_some_and(|n| n > 0), "{body}");
    assert!(body["expires_at"].is_i64(), "{body}");
    assert_eq!(body["session_id"], user.session_id.as_str(), "{body}");
    assert_eq!(body["user"]["id"], user.user_id.as_str(), "{body}");
    let refreshed = Session::from_body(body);
    assert_eq!(refreshed.refresh_token.len(), 43);
    assert_ne!(refreshed.refresh_token, user.refresh_token);
    assert!(!refreshed.access_token.is_empty());

    let me = app.me(&refreshed.access_token).await;
    assert_eq!(me.status(), StatusCode::OK);
    let me: Value = me.json().await.unwrap();
    assert_eq!(me["session"]["id"], user.session_id.as_str(), "{me}");
    assert_eq!(app.me(&user.access_token).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn replaying_a_grandparent_token_revokes_the_session() {
    // Arrange: t0 -> t1 -> t2 -> t3. A grandparent is reuse even inside the grace window.
    let app = spawn_app().await;
    let t0 = app.new_user().await;
    let t1 = app.refresh_ok(&t0.refresh_token).await;
    let t2 = app.refresh_ok(&t1.refresh_token).await;
    let t3 = app.refresh_ok(&t2.refresh_token).await;
    assert_eq!(app.me(&t3.access_token).await.status(), StatusCode::OK);

    // Act
    let replay = app.refresh(&t0.refresh_token).await;

    // Assert
    assert_error(replay, StatusCode::UNAUTHORIZED, "refresh_token_reused").await;
    let latest = app.refresh(&t3.refresh_token).await;
    assert_error(latest, StatusCode::UNAUTHORIZED, "session_revoked").await;
    let me = app.me(&t3.access_token).await;
    assert_error(me, StatusCode::UNAUTHORIZED, "invalid_token").await;
}

#[tokio::test]
async fn replaying_the_parent_after_its_successor_was_used_is_reuse() {
    // Arrange: t0 -> t1 -> t2; t0's successor t1 is spent, so t0 has no successor to hand out.
    let app = spawn_app().await;
    let t0 = app.new_user().await;
    let t1 = app.refresh_ok(&t0.refresh_token).await;
    let t2 = app.refresh_ok(&t1.refresh_token).await;

    // Act
    let replay = app.refresh(&t0.refresh_token).await;

    // Assert
    assert_error(replay, StatusCode::UNAUTHORIZED, "refresh_token_reused").await;
    let latest = app.refresh(&t2.refresh_token).await;
    assert_error(latest, StatusCode::UNAUTHORIZED, "session_revoked").await;
}

#[tokio::test]
async fn a_spent_token_outside_the_grace_window_is_reuse() {
    // Arrange: a three-rotation chain, then move past a one-second grace window.
    let app = spawn_app_with(|s| s.sessions.refresh_grace_secs = 1).await;
    let t0 = app.new_user().await;
    let t1 = app.refresh_ok(&t0.refresh_token).await;
    let t2 = app.refresh_ok(&t1.refresh_token).await;
    let t3 = app.refresh_ok(&t2.refresh_token).await;
    app.advance_clock(2);

    // Act: t2 was the token just spent, but the window is over.
    let replay = app.refresh(&t2.refresh_token).await;

    // Assert
    assert_error(replay, StatusCode::UNAUTHORIZED, "refresh_token_reused").await;
    let latest = app.refresh(&t3.refresh_token).await;
    assert_error(latest, StatusCode::UNAUTHORIZED, "session_revoked").await;
    let me = app.me(&t3.access_token).await;
    assert_error(me, StatusCode::UNAUTHORIZED, "invalid_token").await;
}

#[tokio::test]
async fn a_retry_within_the_grace_window_returns_the_same_successor() {
    // Arrange
    let app = spawn_app().await;
    let t0 = app.new_user().await;
    let t1 = app.refresh_ok(&t0.refresh_token).await;

    // Act
    let retry = app.refresh(&t0.refresh_token).await;

    // Assert
    assert_eq!(retry.status(), StatusCode::OK);
    let retry = Session::from_body(retry.json().await.unwrap());
    assert_eq!(retry.refresh_token, t1.refresh_token);
    assert_eq!(retry.session_id, t0.session_id);
    assert_eq!(app.me(&retry.access_token).await.status(), StatusCode::OK);

    // ... and the successor still rotates normally.
    let t2 = app.refresh_ok(&t1.refresh_token).await;
    assert_ne!(t2.refresh_token, t1.refresh_token);
    assert_ne!(t2.refresh_token, t0.refresh_token);
    assert_eq!(app.me(&t2.access_token).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_retry_after_the_grace_window_revokes_the_session() {
    // Arrange
    let app = spawn_app_with(|s| s.sessions.refresh_grace_secs = 1).await;
    let t0 = app.new_user().await;
    let t1 = app.refresh_ok(&t0.refresh_token).await;
    app.advance_clock(2);

    // Act
    let retry = app.refresh(&t0.refresh_token).await;

    // Assert
    assert_error(retry, StatusCode::UNAUTHORIZED, "refresh_token_reused").await;
    let successor = app.refresh(&t1.refresh_token).await;
    assert_error(successor, StatusCode::UNAUTHORIZED, "session_revoked").await;
    let me = app.me(&t1.access_token).await;
    assert_error(me, StatusCode::UNAUTHORIZED, "invalid_token").await;
}

#[tokio::test]
async fn concurrent_refreshes_of_one_token_converge_on_one_successor() {
    // Arrange
    let app = spawn_app().await;
    let t0 = app.new_user().await;

    // Act
    let responses = join_all((0..20).map(|_| app.refresh(&t0.refresh_token))).await;

    // Assert: with the default 10 s grace window every racer gets the same successor.
    let mut successors = HashSet::new();
    let mut access_tokens = Vec::new();
    for response in responses {
        assert_eq!(response.status(), StatusCode::OK);
        let session = Session::from_body(response.json().await.unwrap());
        assert_eq!(session.session_id, t0.session_id);
        successors.insert(session.refresh_token);
        access_tokens.push(session.access_token);
    }
    assert_eq!(successors.len(), 1, "racers got different successors");
    let t1 = successors.into_iter().next().unwrap();
    assert_ne!(t1, t0.refresh_token);
    for access_token in access_tokens.iter().take(3) {
        assert_eq!(app.me(access_token).await.status(), StatusCode::OK);
    }

    // One more retry of t0 still yields that same single successor.
    let again = app.refresh_ok(&t0.refresh_token).await;
    assert_eq!(again.refresh_token, t1);

    // The successor rotates once; after that t0 has nothing left to replay.
    let t2 = app.refresh_ok(&t1).await;
    assert_ne!(t2.refresh_token, t1);
    assert_eq!(app.me(&t2.access_token).await.status(), StatusCode::OK);
    let replay = app.refresh(&t0.refresh_token).await;
    assert_error(replay, StatusCode::UNAUTHORIZED, "refresh_token_reused").await;
}

#[tokio::test]
async fn concurrent_refreshes_across_two_instances_converge_on_one_successor() {
    // Arrange: two instances on one database.
    let app1 = spawn_app().await;
    let app2 = spawn_on(app1.db.clone(), |_| {}).await;
    let t0 = app1.new_user().await;

    // Act
    let requests = (0..20).map(|i| {
        let app = if i % 2 == 0 { &app1 } else { &app2 };
        app.refresh(&t0.refresh_token)
    });
    let responses = join_all(requests).await;

    // Assert
    let mut successors = HashSet::new();
    for response in responses {
        assert_eq!(response.status(), StatusCode::OK);
        let session = Session::from_body(response.json().await.unwrap());
        successors.insert(session.refresh_token);
    }
    assert_eq!(successors.len(), 1, "racers got different successors");
    let t1 = successors.into_iter().next().unwrap();
    let t2 = app2.refresh_ok(&t1).await;
    assert_eq!(app1.me(&t2.access_token).await.status(), StatusCode::OK);
    assert_eq!(app2.me(&t2.access_token).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn an_unknown_refresh_token_is_rejected() {
    // Arrange
    let app = spawn_app().await;
    app.new_user().await;

    // Act
    let response = app.refresh(&unknown_refresh_token()).await;

    // Assert
    assert_error(response, StatusCode::UNAUTHORIZED, "invalid_refresh_token").await;
}

#[tokio::test]
async fn a_malformed_refresh_token_is_rejected() {
    // Arrange
    let app = spawn_app().await;

    // Act
    let response = app.refresh("abc").await;

    // Assert
    assert_error(response, StatusCode::UNAUTHORIZED, "invalid_refresh_token").await;
}

#[tokio::test]
async fn a_refresh_without_any_refresh_token_asks_whether_cookie_mode_is_on() {
    // Arrange: cookie mode is off, as by default; a browser client in cookie mode sends no
    // token in the body, only its (absent) cookie.
    let app = spawn_app().await;

    // Act
    let empty = app.post("/v1/token/refresh").send().await.unwrap();
    let other_field = app
        .post_json("/v1/token/refresh", &json!({"token": "x"}))
        .await;

    // Assert: 401 `invalid_refresh_token` that names the likely cause, not a 400.
    for response in [empty, other_field] {
        let body = assert_error(response, StatusCode::UNAUTHORIZED, "invalid_refresh_token").await;
        let description = body["error_description"].as_str().unwrap();
        assert!(description.contains("is cookie mode on?"), "{body}");
    }
}

#[tokio::test]
async fn a_refresh_that_is_not_json_is_unsupported() {
    // Arrange
    let app = spawn_app().await;
    let user = app.new_user().await;
    let body = json!({ "refresh_token": user.refresh_token }).to_string();

    // Act
    let response = app
        .post("/v1/token/refresh")
        .header(CONTENT_TYPE, "text/plain")
        .body(body)
        .send()
        .await
        .unwrap();

    // Assert
    assert_error(
        response,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
    )
    .await;
    // The token was not spent by the refused request.
    let refreshed = app.refresh_ok(&user.refresh_token).await;
    assert_ne!(refreshed.refresh_token, user.refresh_token);
}

#[tokio::test]
async fn an_idle_session_expires() {
    // Arrange
    let app = spawn_app_with(|s| s.sessions.idle_timeout_secs = 1).await;
    let user = app.new_user().await;
    app.advance_clock(2);

    // Act
    let response = app.refresh(&user.refresh_token).await;

    // Assert
    assert_error(response, StatusCode::UNAUTHORIZED, "session_expired").await;
}

#[tokio::test]
async fn a_permanent_session_expires_after_its_lifetime() {
    // Arrange
    let app = spawn_app_with(|s| s.sessions.permanent_ttl_secs = 1).await;
    let user = app.new_user().await;
    app.advance_clock(2);

    // Act
    let response = app.refresh(&user.refresh_token).await;

    // Assert
    assert_error(response, StatusCode::UNAUTHORIZED, "session_expired").await;
}

#[tokio::test]
async fn a_guest_session_expires_after_its_lifetime() {
    // Arrange
    let app = spawn_app_with(|s| s.sessions.guest_ttl_secs = 1).await;
    let guest = app.guest().await;
    app.advance_clock(2);

    // Act
    let response = app.refresh(&guest.refresh_token).await;

    // Assert
    assert_error(response, StatusCode::UNAUTHORIZED, "session_expired").await;
}

#[tokio::test]
async fn a_short_guest_lifetime_does_not_shorten_permanent_sessions() {
    // Arrange
    let app = spawn_app_with(|s| s.sessions.guest_ttl_secs = 1).await;
    let user = app.new_user().await;
    app.advance_clock(2);

    // Act
    let response = app.refresh(&user.refresh_token).await;

    // Assert
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test]
async fn refresh_after_logout_is_refused() {
    // Arrange
    let app = spawn_app().await;
    let user = app.new_user().await;
    assert_eq!(
        app.logout(&user.access_token, None).await.status(),
        StatusCode::NO_CONTENT
    );

    // Act
    let response = app.refresh(&user.refresh_token).await;

    // Assert
    assert_error(response, StatusCode::UNAUTHORIZED, "session_revoked").await;
}
