//! `POST /v1/logout` and its scopes.

use reqwest::StatusCode;
use reqwest::header::CONTENT_TYPE;

use crate::helpers::{STRONG_PASSWORD, Session, assert_error, spawn_app};

#[tokio::test]
async fn logout_is_204_and_repeating_it_with_the_same_token_is_204() {
    let app = spawn_app().await;
    let session = app.new_user().await;
    assert_eq!(
        app.logout(&session.access_token, None).await.status(),
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        app.logout(&session.access_token, None).await.status(),
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        app.me(&session.access_token).await.status(),
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn scopes_local_others_and_global_revoke_the_right_sessions() {
    let app = spawn_app().await;
    let first = app.new_user_with_email("ann@example.com").await;
    let mut more = Vec::new();
    for _ in 0..3 {
        let response = app.login("ann@example.com", STRONG_PASSWORD).await;
        more.push(Session::from_body(response.json().await.unwrap()));
    }
    let bystander = app.new_user().await;

    assert_eq!(
        app.logout(&more[0].access_token, Some("local"))
            .await
            .status(),
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        app.me(&more[0].access_token).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(app.me(&first.access_token).await.status(), StatusCode::OK);

    assert_eq!(
        app.logout(&more[1].access_token, Some("others"))
            .await
            .status(),
        StatusCode::NO_CONTENT
    );
    assert_eq!(app.me(&more[1].access_token).await.status(), StatusCode::OK);
    assert_eq!(
        app.me(&first.access_token).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.me(&more[2].access_token).await.status(),
        StatusCode::UNAUTHORIZED
    );

    assert_eq!(
        app.logout(&more[1].access_token, Some("global"))
            .await
            .status(),
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        app.me(&more[1].access_token).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.me(&bystander.access_token).await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn logout_needs_a_valid_token_and_a_known_scope() {
    let app = spawn_app().await;
    let none = app.post("/v1/logout").send().await.unwrap();
    assert_error(none, StatusCode::UNAUTHORIZED, "invalid_token").await;
    let bad = app
        .post("/v1/logout")
        .bearer_auth("not.a.token")
        .send()
        .await
        .unwrap();
    assert_error(bad, StatusCode::UNAUTHORIZED, "invalid_token").await;

    let session = app.new_user().await;
    let unknown_scope = app.logout(&session.access_token, Some("everyone")).await;
    assert_error(unknown_scope, StatusCode::BAD_REQUEST, "invalid_request").await;
    let wrong_type = app
        .post("/v1/logout")
        .bearer_auth(&session.access_token)
        .header(CONTENT_TYPE, "text/plain")
        .body("scope=global")
        .send()
        .await
        .unwrap();
    assert_error(
        wrong_type,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
    )
    .await;
    // Nothing was revoked by the refused requests.
    assert_eq!(app.me(&session.access_token).await.status(), StatusCode::OK);
}

/// A session ended elsewhere: its access token is still correctly signed and unexpired.
async fn two_sessions_with_b_ended(app: &crate::helpers::TestApp) -> (Session, Session) {
    let a = app.new_user_with_email("ann@example.com").await;
    let b = Session::from_body(
        app.login("ann@example.com", STRONG_PASSWORD)
            .await
            .json()
            .await
            .unwrap(),
    );
    let deleted = app.delete_session(&a.access_token, &b.session_id).await;
    assert_eq!(deleted.status(), StatusCode::NO_CONTENT);
    (a, b)
}

#[tokio::test]
async fn a_dead_session_cannot_end_the_users_other_sessions() {
    // Arrange: B was deleted by its owner from A.
    let app = spawn_app().await;
    let (a, b) = two_sessions_with_b_ended(&app).await;

    // Act + Assert: B's token may not log anybody out any more.
    for scope in ["others", "global"] {
        let response = app.logout(&b.access_token, Some(scope)).await;
        assert_error(response, StatusCode::UNAUTHORIZED, "invalid_token").await;
    }
    assert_eq!(app.me(&a.access_token).await.status(), StatusCode::OK);
    // Logging the dead session itself out again is still the idempotent 204.
    assert_eq!(
        app.logout(&b.access_token, Some("local")).await.status(),
        StatusCode::NO_CONTENT
    );
}

#[tokio::test]
async fn a_session_that_logged_out_cannot_then_log_out_the_others() {
    let app = spawn_app().await;
    let a = app.new_user_with_email("ann@example.com").await;
    let b = Session::from_body(
        app.login("ann@example.com", STRONG_PASSWORD)
            .await
            .json()
            .await
            .unwrap(),
    );
    assert_eq!(
        app.logout(&b.access_token, None).await.status(),
        StatusCode::NO_CONTENT
    );
    let response = app.logout(&b.access_token, Some("global")).await;
    assert_error(response, StatusCode::UNAUTHORIZED, "invalid_token").await;
    assert_eq!(app.me(&a.access_token).await.status(), StatusCode::OK);
}
