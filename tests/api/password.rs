//! `POST /v1/password`: changing the password ends every other session of the user.

use reqwest::StatusCode;
use reqwest::header::CONTENT_TYPE;
use serde_json::json;

use crate::helpers::{STRONG_PASSWORD, assert_error, fresh_email, spawn_app};

const NEW_PASSWORD: &str = "quietly orbiting marmalade 1987";

#[tokio::test]
async fn changing_the_password_keeps_this_session_and_ends_the_others() {
    // Arrange
    let app = spawn_app().await;
    let email = fresh_email();
    let other = app.new_user_with_email(&email).await;
    let caller = app.login_ok(&email, STRONG_PASSWORD).await;
    let stranger = app.new_user().await;

    // Act
    let response = app
        .change_password(
            &caller.access_token,
            &json!({"current_password": STRONG_PASSWORD, "new_password": NEW_PASSWORD}),
        )
        .await;

    // Assert
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    assert_eq!(app.me(&caller.access_token).await.status(), StatusCode::OK);
    let refreshed = app.refresh(&caller.refresh_token).await;
    assert_eq!(refreshed.status(), StatusCode::OK);
    let ended = app.me(&other.access_token).await;
    assert_error(ended, StatusCode::UNAUTHORIZED, "invalid_token").await;
    let ended = app.refresh(&other.refresh_token).await;
    assert_error(ended, StatusCode::UNAUTHORIZED, "session_revoked").await;
    let old = app.login(&email, STRONG_PASSWORD).await;
    assert_error(old, StatusCode::UNAUTHORIZED, "invalid_credentials").await;
    let new = app.login_ok(&email, NEW_PASSWORD).await;
    assert_eq!(new.user_id, caller.user_id);
    assert_eq!(
        app.me(&stranger.access_token).await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn a_wrong_current_password_changes_nothing() {
    // Arrange
    let app = spawn_app().await;
    let email = fresh_email();
    let other = app.new_user_with_email(&email).await;
    let caller = app.login_ok(&email, STRONG_PASSWORD).await;

    // Act
    let response = app
        .change_password(
            &caller.access_token,
            &json!({"current_password": "not the password at all", "new_password": NEW_PASSWORD}),
        )
        .await;

    // Assert
    assert_error(response, StatusCode::UNAUTHORIZED, "invalid_credentials").await;
    app.login_ok(&email, STRONG_PASSWORD).await;
    let new = app.login(&email, NEW_PASSWORD).await;
    assert_error(new, StatusCode::UNAUTHORIZED, "invalid_credentials").await;
    assert_eq!(app.me(&other.access_token).await.status(), StatusCode::OK);
    assert_eq!(app.me(&caller.access_token).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_guessable_new_password_is_weak() {
    // Arrange
    let app = spawn_app().await;
    let email = fresh_email();
    let user = app.new_user_with_email(&email).await;

    // Act
    let response = app
        .change_password(
            &user.access_token,
            &json!({"current_password": STRONG_PASSWORD, "new_password": "password"}),
        )
        .await;

    // Assert
    assert_error(response, StatusCode::UNPROCESSABLE_ENTITY, "weak_password").await;
    app.login_ok(&email, STRONG_PASSWORD).await;
}

#[tokio::test]
async fn a_short_new_password_is_weak() {
    // Arrange
    let app = spawn_app().await;
    let email = fresh_email();
    let user = app.new_user_with_email(&email).await;
    let other = app.login_ok(&email, STRONG_PASSWORD).await;

    // Act
    let response = app
        .change_password(
            &user.access_token,
            &json!({"current_password": STRONG_PASSWORD, "new_password": "xK9#qv2"}),
        )
        .await;

    // Assert
    assert_error(response, StatusCode::UNPROCESSABLE_ENTITY, "weak_password").await;
    app.login_ok(&email, STRONG_PASSWORD).await;
    assert_eq!(app.me(&other.access_token).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_missing_field_is_a_bad_request() {
    // Arrange
    let app = spawn_app().await;
    let user = app.new_user().await;

    // Act
    let missing_new = app
        .change_password(
            &user.access_token,
            &json!({"current_password": STRONG_PASSWORD}),
        )
        .await;
    let missing_current = app
        .change_password(&user.access_token, &json!({"new_password": NEW_PASSWORD}))
        .await;

    // Assert
    assert_error(missing_new, StatusCode::BAD_REQUEST, "invalid_request").await;
    assert_error(missing_current, StatusCode::BAD_REQUEST, "invalid_request").await;
}

#[tokio::test]
async fn a_body_that_is_not_json_is_unsupported() {
    // Arrange
    let app = spawn_app().await;
    let user = app.new_user().await;
    let body = json!({"current_password": STRONG_PASSWORD, "new_password": NEW_PASSWORD});

    // Act
    let response = app
        .post("/v1/password")
        .bearer_auth(&user.access_token)
        .header(CONTENT_TYPE, "text/plain")
        .body(body.to_string())
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
}

#[tokio::test]
async fn changing_the_password_requires_a_token() {
    // Arrange
    let app = spawn_app().await;
    let email = fresh_email();
    app.new_user_with_email(&email).await;

    // Act
    let response = app
        .post_json(
            "/v1/password",
            &json!({"current_password": STRONG_PASSWORD, "new_password": NEW_PASSWORD}),
        )
        .await;

    // Assert
    assert_error(response, StatusCode::UNAUTHORIZED, "invalid_token").await;
    app.login_ok(&email, STRONG_PASSWORD).await;
}

#[tokio::test]
async fn a_revoked_session_cannot_change_the_password() {
    // Arrange
    let app = spawn_app().await;
    let email = fresh_email();
    let user = app.new_user_with_email(&email).await;
    assert_eq!(
        app.logout(&user.access_token, None).await.status(),
        StatusCode::NO_CONTENT
    );

    // Act
    let response = app
        .change_password(
            &user.access_token,
            &json!({"current_password": STRONG_PASSWORD, "new_password": NEW_PASSWORD}),
        )
        .await;

    // Assert
    assert_error(response, StatusCode::UNAUTHORIZED, "invalid_token").await;
    app.login_ok(&email, STRONG_PASSWORD).await;
}

#[tokio::test]
async fn a_guest_has_no_password_to_change() {
    // Arrange
    let app = spawn_app().await;
    let guest = app.guest().await;

    // Act
    let response = app
        .change_password(
            &guest.access_token,
            &json!({"current_password": STRONG_PASSWORD, "new_password": NEW_PASSWORD}),
        )
        .await;

    // Assert: told plainly, and nothing counted against the account.
    let body = assert_error(response, StatusCode::FORBIDDEN, "forbidden").await;
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("no password")
    );
    assert_eq!(app.me(&guest.access_token).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn no_login_that_verified_the_old_password_survives_the_change() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::time::{Duration, Instant};

    // Arrange: logins with the old password run continuously from four clients.
    let app = Arc::new(spawn_app().await);
    let email = fresh_email();
    let owner = app.new_user_with_email(&email).await;
    let stop = Arc::new(AtomicBool::new(false));
    let logins = Arc::new(AtomicUsize::new(0));
    let mut clients = Vec::new();
    for _ in 0..4 {
        let (app, stop, email, logins) = (app.clone(), stop.clone(), email.clone(), logins.clone());
        clients.push(tokio::spawn(async move {
            let mut answered = Vec::new();
            while !stop.load(Ordering::SeqCst) {
                let started = Instant::now();
                let status = app.login(&email, STRONG_PASSWORD).await.status();
                answered.push((started, status));
                logins.fetch_add(1, Ordering::SeqCst);
            }
            answered
        }));
    }
    let logins_after = |count: usize| {
        let logins = logins.clone();
        crate::helpers::within(Duration::from_secs(10), move || {
            let done = logins.load(Ordering::SeqCst) >= count;
            async move { done }
        })
    };
    assert!(logins_after(4).await, "the logins did not get going");

    // Act: the owner changes the password while logins are in flight.
    let body = json!({"current_password": STRONG_PASSWORD, "new_password": NEW_PASSWORD});
    let change = app.change_password(&owner.access_token, &body).await;
    assert_eq!(change.status(), StatusCode::NO_CONTENT);
    let changed = Instant::now();
    // Every client gets at least two answers more, so some logins start after the change.
    let at_change = logins.load(Ordering::SeqCst);
    assert!(logins_after(at_change + 8).await, "the logins stopped");
    stop.store(true, Ordering::SeqCst);
    let mut answers = Vec::new();
    for client in clients {
        answers.extend(client.await.unwrap());
    }

    // Assert: the owner's session is the only live one, and no login that started after the
    // change was answered succeeded.
    assert!(
        answers.iter().any(|(_, s)| *s == StatusCode::OK),
        "logins ran"
    );
    for (started, status) in &answers {
        if *started > changed {
            assert_eq!(*status, StatusCode::UNAUTHORIZED);
        }
    }
    let idle = app.core.settings.sessions.idle_timeout_secs;
    let live = app
        .store
        .list_live_sessions(&owner.user_id, crate::helpers::system_now(), idle)
        .await
        .unwrap();
    let live: Vec<&str> = live.iter().map(|s| s.id.as_str()).collect();
    assert_eq!(live, vec![owner.session_id.as_str()]);
}
