//! Signup, login and guest sessions.

use futures::future::join_all;
use reqwest::StatusCode;
use reqwest::header::{CACHE_CONTROL, CONTENT_TYPE};
use serde_json::{Value, json};

use crate::helpers::{STRONG_PASSWORD, assert_error, count_users, spawn_app};

fn assert_token_response(body: &Value, is_guest: bool) {
    assert!(
        body["access_token"].as_str().unwrap().split('.').count() == 3,
        "{body}"
    );
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 900);
    assert!(body["expires_at"].as_i64().unwrap() > 1_700_000_000);
    assert_eq!(body["refresh_token"].as_str().unwrap().len(), 43);
    assert!(uuid::Uuid::parse_str(body["session_id"].as_str().unwrap()).is_ok());
    assert!(uuid::Uuid::parse_str(body["user"]["id"].as_str().unwrap()).is_ok());
    assert_eq!(body["user"]["is_guest"], is_guest);
    assert!(body["user"]["created_at"].as_str().unwrap().ends_with('Z'));
}

#[tokio::test]
async fn signup_returns_201_with_a_token_response() {
    let app = spawn_app().await;
    let response = app.signup("  Ann@Example.COM ", STRONG_PASSWORD).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    assert_eq!(response.headers()[CACHE_CONTROL], "no-store");
    let body: Value = response.json().await.unwrap();
    assert_token_response(&body, false);
    assert_eq!(body["user"]["email"], "ann@example.com");
}

#[tokio::test]
async fn a_second_signup_with_the_same_normalized_email_is_409() {
    let app = spawn_app().await;
    app.new_user_with_email("bob@example.com").await;
    let response = app
        .signup("BOB@example.com ", "another fine passphrase 9")
        .await;
    assert_error(response, StatusCode::CONFLICT, "email_taken").await;
}

#[tokio::test]
async fn ten_concurrent_signups_of_one_email_have_exactly_one_winner() {
    let app = spawn_app().await;
    let attempts = (0..10).map(|_| app.signup("race@example.com", STRONG_PASSWORD));
    let statuses: Vec<StatusCode> = join_all(attempts)
        .await
        .iter()
        .map(|r| r.status())
        .collect();
    let created = statuses
        .iter()
        .filter(|s| **s == StatusCode::CREATED)
        .count();
    let conflicts = statuses
        .iter()
        .filter(|s| **s == StatusCode::CONFLICT)
        .count();
    assert_eq!((created, conflicts), (1, 9), "{statuses:?}");
    assert_eq!(count_users(&app).await, 1);
}

#[tokio::test]
async fn signup_rejects_bad_emails_with_422() {
    let app = spawn_app().await;
    let too_long = format!("{}@example.com", "a".repeat(250));
    for email in [
        "",
        "not-an-email",
        "ann@",
        "@example.com",
        too_long.as_str(),
    ] {
        let response = app.signup(email, STRONG_PASSWORD).await;
        assert_error(response, StatusCode::UNPROCESSABLE_ENTITY, "invalid_email").await;
    }
    assert_eq!(count_users(&app).await, 0);
}

#[tokio::test]
async fn signup_rejects_weak_short_and_overlong_passwords_with_422() {
    let app = spawn_app().await;
    let overlong = "Zq9!".repeat(257);
    for password in [
        "short1!",
        "password",
        "12345678",
        "ann@example.com",
        overlong.as_str(),
    ] {
        let response = app.signup("ann@example.com", password).await;
        assert_error(response, StatusCode::UNPROCESSABLE_ENTITY, "weak_password").await;
    }
}

#[tokio::test]
async fn malformed_bodies_get_contract_errors() {
    let app = spawn_app().await;
    let raw = |body: &'static str, content_type: &'static str| {
        app.post("/v1/signup")
            .header(CONTENT_TYPE, content_type)
            .body(body)
            .send()
    };
    let cases = [
        (
            raw("{not json", "application/json").await.unwrap(),
            400,
            "invalid_request",
        ),
        (
            raw(r#"{"email": "a@b.co"}"#, "application/json")
                .await
                .unwrap(),
            400,
            "invalid_request",
        ),
        (
            raw(r#"{"email": 5, "password": "x"}"#, "application/json")
                .await
                .unwrap(),
            400,
            "invalid_request",
        ),
        (
            raw(r#"[1, 2]"#, "application/json").await.unwrap(),
            400,
            "invalid_request",
        ),
        (
            raw("email=a@b.co", "application/x-www-form-urlencoded")
                .await
                .unwrap(),
            415,
            "unsupported_media_type",
        ),
        (
            raw(r#"{"email": "a@b.co"}"#, "text/plain").await.unwrap(),
            415,
            "unsupported_media_type",
        ),
    ];
    for (response, status, code) in cases {
        let status = StatusCode::from_u16(status).unwrap();
        let body = assert_error(response, status, code).await;
        assert!(!body.to_string().contains("select"), "{body}");
    }
    let no_type = app.post("/v1/signup").body("{}").send().await.unwrap();
    assert_error(
        no_type,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
    )
    .await;
}

#[tokio::test]
async fn bodies_over_16_kib_are_413() {
    let app = spawn_app().await;
    let padding = "x".repeat(17 * 1024);
    let body = json!({"email": "ann@example.com", "password": STRONG_PASSWORD, "pad": padding});
    let response = app.post_json("/v1/signup", &body).await;
    assert_error(response, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large").await;
    // Chunked, with no Content-Length to go by.
    let stream = futures::stream::iter(vec![Ok::<_, std::io::Error>(padding.into_bytes())]);
    let response = app
        .post("/v1/signup")
        .header(CONTENT_TYPE, "application/json")
        .body(reqwest::Body::wrap_stream(stream))
        .send()
        .await
        .unwrap();
    assert_error(response, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large").await;
}

#[tokio::test]
async fn unknown_fields_are_ignored() {
    let app = spawn_app().await;
    let body = json!({"email": "ann@example.com", "password": STRONG_PASSWORD, "name": "Ann"});
    assert_eq!(
        app.post_json("/v1/signup", &body).await.status(),
        StatusCode::CREATED
    );
}

#[tokio::test]
async fn login_returns_a_new_session_for_the_same_user() {
    let app = spawn_app().await;
    let signed_up = app.new_user_with_email("ann@example.com").await;
    let response = app.login("ANN@example.com", STRONG_PASSWORD).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()[CACHE_CONTROL], "no-store");
    let body: Value = response.json().await.unwrap();
    assert_token_response(&body, false);
    assert_eq!(body["user"]["id"], signed_up.user_id.as_str());
    assert_ne!(body["session_id"], signed_up.session_id.as_str());
}

#[tokio::test]
async fn wrong_password_and_unknown_email_get_identical_answers() {
    let app = spawn_app().await;
    app.new_user_with_email("ann@example.com").await;
    let wrong = app
        .login("ann@example.com", "not the right passphrase")
        .await;
    let unknown = app.login("nobody@example.com", STRONG_PASSWORD).await;
    let malformed = app.login("not-an-email", STRONG_PASSWORD).await;
    let mut bodies = Vec::new();
    for response in [wrong, unknown, malformed] {
        bodies.push(assert_error(response, StatusCode::UNAUTHORIZED, "invalid_credentials").await);
    }
    assert_eq!(bodies[0], bodies[1]);
    assert_eq!(bodies[1], bodies[2]);
}

#[tokio::test]
async fn login_validates_its_body() {
    let app = spawn_app().await;
    let response = app
        .post_json("/v1/login", &json!({"email": "ann@example.com"}))
        .await;
    assert_error(response, StatusCode::BAD_REQUEST, "invalid_request").await;
}

#[tokio::test]
async fn guest_sessions_have_no_email_and_accept_an_empty_or_object_body() {
    let app = spawn_app().await;
    let bare = app.guest().await;
    assert_token_response(&bare.body, true);
    assert_eq!(bare.body["user"]["email"], Value::Null);
    let with_object = app.post_json("/v1/guest", &json!({})).await;
    assert_eq!(with_object.status(), StatusCode::CREATED);
    let other: Value = with_object.json().await.unwrap();
    assert_ne!(other["user"]["id"], bare.user_id.as_str());

    let me: Value = app.me(&bare.access_token).await.json().await.unwrap();
    assert_eq!(me["user"]["is_guest"], true);
    assert_eq!(me["session"]["kind"], "guest");
    let expires = me["session"]["expires_at"].as_i64().unwrap();
    let created = bare.body["expires_at"].as_i64().unwrap() - 900;
    assert!(
        (expires - created - 7 * 24 * 3600).abs() <= 5,
        "guest sessions last 7 days"
    );
}

#[tokio::test]
async fn guest_rejects_malformed_json() {
    let app = spawn_app().await;
    let response = app
        .post("/v1/guest")
        .header(CONTENT_TYPE, "application/json")
        .body("{oops")
        .send()
        .await
        .unwrap();
    assert_error(response, StatusCode::BAD_REQUEST, "invalid_request").await;
}
