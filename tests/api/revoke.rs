//! `POST /v1/revoke` (RFC 7009): the holder of a token ends its session; always 200.

use reqwest::header::CONTENT_TYPE;
use reqwest::{Response, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{
    STRONG_PASSWORD, TestApp, assert_error, fresh_email, spawn_app, unknown_refresh_token,
};

async fn revoke_json(app: &TestApp, body: &Value) -> Response {
    app.post_json("/v1/revoke", body).await
}

#[tokio::test]
async fn revoking_a_refresh_token_ends_its_session() {
    // Arrange
    let app = spawn_app().await;
    let user = app.new_user().await;

    // Act
    let response = revoke_json(&app, &json!({ "token": user.refresh_token })).await;

    // Assert
    assert_eq!(response.status(), StatusCode::OK);
    let me = app.me(&user.access_token).await;
    assert_error(me, StatusCode::UNAUTHORIZED, "invalid_token").await;
    let refresh = app.refresh(&user.refresh_token).await;
    assert_error(refresh, StatusCode::UNAUTHORIZED, "session_revoked").await;
}

#[tokio::test]
async fn revoking_with_a_type_hint_works() {
    // Arrange
    let app = spawn_app().await;
    let user = app.new_user().await;

    // Act
    let response = revoke_json(
        &app,
        &json!({"token": user.refresh_token, "token_type_hint": "refresh_token"}),
    )
    .await;

    // Assert
    assert_eq!(response.status(), StatusCode::OK);
    let me = app.me(&user.access_token).await;
    assert_error(me, StatusCode::UNAUTHORIZED, "invalid_token").await;
}

#[tokio::test]
async fn revoking_a_spent_refresh_token_ends_its_session() {
    // Arrange
    let app = spawn_app().await;
    let user = app.new_user().await;
    let response = app.refresh(&user.refresh_token).await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    let successor = body["refresh_token"].as_str().unwrap().to_string();
    let access_token = body["access_token"].as_str().unwrap().to_string();

    // Act
    let response = revoke_json(&app, &json!({ "token": user.refresh_token })).await;

    // Assert
    assert_eq!(response.status(), StatusCode::OK);
    let me = app.me(&access_token).await;
    assert_error(me, StatusCode::UNAUTHORIZED, "invalid_token").await;
    let refresh = app.refresh(&successor).await;
    assert_error(refresh, StatusCode::UNAUTHORIZED, "session_revoked").await;
}

#[tokio::test]
async fn revoking_an_access_token_by_form_ends_its_session() {
    // Arrange
    let app = spawn_app().await;
    let user = app.new_user().await;

    // Act
    let response = app
        .post("/v1/revoke")
        .form(&[("token", user.access_token.as_str())])
        .send()
        .await
        .unwrap();

    // Assert
    assert_eq!(response.status(), StatusCode::OK);
    let me = app.me(&user.access_token).await;
    assert_error(me, StatusCode::UNAUTHORIZED, "invalid_token").await;
    let refresh = app.refresh(&user.refresh_token).await;
    assert_error(refresh, StatusCode::UNAUTHORIZED, "session_revoked").await;
}

#[tokio::test]
async fn revoking_a_refresh_token_by_form_ends_its_session() {
    // Arrange
    let app = spawn_app().await;
    let user = app.new_user().await;

    // Act
    let response = app
        .post("/v1/revoke")
        .form(&[
            ("token", user.refresh_token.as_str()),
            ("token_type_hint", "refresh_token"),
        ])
        .send()
        .await
        .unwrap();

    // Assert
    assert_eq!(response.status(), StatusCode::OK);
    let me = app.me(&user.access_token).await;
    assert_error(me, StatusCode::UNAUTHORIZED, "invalid_token").await;
}

#[tokio::test]
async fn revoking_an_unknown_token_is_ok() {
    // Arrange
    let app = spawn_app().await;
    let bystander = app.new_user().await;

    // Act
    let response = revoke_json(&app, &json!({ "token": unknown_refresh_token() })).await;

    // Assert
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        app.me(&bystander.access_token).await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn revoking_a_garbage_token_is_ok() {
    // Arrange
    let app = spawn_app().await;
    let bystander = app.new_user().await;

    // Act
    let response = revoke_json(&app, &json!({"token": "not.a.token"})).await;
    let empty = revoke_json(&app, &json!({"token": ""})).await;

    // Assert
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(empty.status(), StatusCode::OK);
    assert_eq!(
        app.me(&bystander.access_token).await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn revoking_an_already_revoked_token_is_ok() {
    // Arrange
    let app = spawn_app().await;
    let user = app.new_user().await;
    let first = revoke_json(&app, &json!({ "token": user.refresh_token })).await;
    assert_eq!(first.status(), StatusCode::OK);

    // Act
    let again = revoke_json(&app, &json!({ "token": user.refresh_token })).await;
    let access = revoke_json(&app, &json!({ "token": user.access_token })).await;

    // Assert
    assert_eq!(again.status(), StatusCode::OK);
    assert_eq!(access.status(), StatusCode::OK);
    let me = app.me(&user.access_token).await;
    assert_error(me, StatusCode::UNAUTHORIZED, "invalid_token").await;
}

#[tokio::test]
async fn a_missing_token_is_a_bad_request() {
    // Arrange
    let app = spawn_app().await;

    // Act
    let json_body = revoke_json(&app, &json!({"token_type_hint": "refresh_token"})).await;
    let form_body = app
        .post("/v1/revoke")
        .form(&[("token_type_hint", "access_token")])
        .send()
        .await
        .unwrap();

    // Assert
    assert_error(json_body, StatusCode::BAD_REQUEST, "invalid_request").await;
    assert_error(form_body, StatusCode::BAD_REQUEST, "invalid_request").await;
}

#[tokio::test]
async fn a_body_that_is_neither_json_nor_form_is_unsupported() {
    // Arrange
    let app = spawn_app().await;
    let user = app.new_user().await;

    // Act
    let response = app
        .post("/v1/revoke")
        .header(CONTENT_TYPE, "text/plain")
        .body(format!("token={}", user.refresh_token))
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
    assert_eq!(app.me(&user.access_token).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn revoking_one_session_leaves_the_users_other_sessions_working() {
    // Arrange
    let app = spawn_app().await;
    let email = fresh_email();
    let revoked = app.new_user_with_email(&email).await;
    let kept = app.login_ok(&email, STRONG_PASSWORD).await;

    // Act
    let response = revoke_json(&app, &json!({ "token": revoked.refresh_token })).await;

    // Assert
    assert_eq!(response.status(), StatusCode::OK);
    let me = app.me(&revoked.access_token).await;
    assert_error(me, StatusCode::UNAUTHORIZED, "invalid_token").await;
    assert_eq!(app.me(&kept.access_token).await.status(), StatusCode::OK);
    let refreshed = app.refresh(&kept.refresh_token).await;
    assert_eq!(refreshed.status(), StatusCode::OK);
}
