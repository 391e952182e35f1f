//! `POST /v1/introspect` (RFC 7662): a live access token is described; anything else answers
//! exactly `{"active": false}`. Only service keys with the `introspect` scope may ask.

use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header::CONTENT_TYPE;
use serde_json::{Value, json};
use sessiond::credentials::service_keys::Scope;

use crate::helpers::{
    STRONG_PASSWORD, Session, TestApp, access_tokens_for, assert_error, claims_of, kid_of,
    sign_access_token, signed_by_a_foreign_key, spawn_on, subject, within,
};
use crate::service::{
    ADMIN_KEY, INTROSPECT_KEY, assert_active, assert_inactive, create_cli_key, introspect,
    introspect_json, introspect_request, spawn_service_app, until_key_known, with_test_keys,
};

const KEY: Option<&str> = Some(INTROSPECT_KEY);

#[tokio::test]
async fn a_live_token_is_active_with_its_claims() {
    // Arrange
    let app = spawn_service_app().await;
    let session = app.new_user_with_email("ann@example.com").await;
    let claims = claims_of(&session.access_token);

    // Act: the form body RFC 7662 specifies.
    let response = introspect(&app, KEY, &session.access_token).await;

    // Assert
    let body = assert_active(response).await;
    assert_eq!(body["sub"], session.user_id.as_str());
    assert_eq!(body["sid"], session.session_id.as_str());
    assert_eq!(body["token_type"], "access_token");
    assert_eq!(body["is_guest"], false);
    assert_eq!(body["email"], "ann@example.com");
    assert_eq!(body["iss"], "http://localhost:8080");
    assert_eq!(body["aud"], "sessiond");
    for claim in ["exp", "iat", "jti", "iss", "aud"] {
        assert_eq!(body[claim], claims[claim], "{claim} in {body}");
    }
    assert!(body["exp"].is_i64() && body["iat"].is_i64(), "{body}");
    assert!(body["jti"].as_str().is_some_and(|jti| !jti.is_empty()));
}

#[tokio::test]
async fn a_json_body_is_accepted_too() {
    // Arrange
    let app = spawn_service_app().await;
    let session = app.new_user().await;

    // Act
    let response = introspect_json(&app, KEY, &json!({ "token": session.access_token })).await;

    // Assert
    let body = assert_active(response).await;
    assert_eq!(body["sub"], session.user_id.as_str());
    assert_eq!(body["sid"], session.session_id.as_str());
    assert_eq!(body["token_type"], "access_token");
}

#[tokio::test]
async fn a_guest_token_is_active_and_marked_as_guest() {
    // Arrange
    let app = spawn_service_app().await;
    let guest = app.guest().await;

    // Act
    let response = introspect(&app, KEY, &guest.access_token).await;

    // Assert
    let body = assert_active(response).await;
    assert_eq!(body["sub"], guest.user_id.as_str());
    assert_eq!(body["is_guest"], true);
    assert!(body.get("email").is_none_or(Value::is_null), "{body}");
}

#[tokio::test]
async fn unknown_and_garbage_tokens_are_inactive() {
    // Arrange
    let app = spawn_service_app().await;
    let random_opaque = sessiond::credentials::tokens::opaque::generate();
    let garbage = [
        "x",
        "a.b.c",
        "eyJhbGciOiJFUzI1NiJ9.e30.",
        ".....",
        secrecy::ExposeSecret::expose_secret(&random_opaque),
        &"A".repeat(4000),
    ];

    for token in garbage {
        // Act
        let response = introspect(&app, KEY, token).await;

        // Assert
        assert_inactive(response).await;
    }
}

#[tokio::test]
async fn an_expired_token_is_inactive() {
    // Arrange
    let app = spawn_service_app().await;
    let session = app.new_user().await;
    let long_ago = crate::helpers::system_now() - 1000;
    let (expired, _) = app.core.tokens.issue(subject(&session), long_ago).unwrap();

    // Act
    let response = introspect(&app, KEY, &expired).await;

    // Assert
    assert_inactive(response).await;
    // Control: a current token for the same session is active.
    let (fresh, _) = app
        .core
        .tokens
        .issue(subject(&session), crate::helpers::system_now())
        .unwrap();
    assert_active(introspect(&app, KEY, &fresh).await).await;
}

#[tokio::test]
async fn a_token_signed_by_another_key_is_inactive() {
    // Arrange: the real token's header and claims, signed with a key the service never had.
    let app = spawn_service_app().await;
    let session = app.new_user().await;
    let forged = signed_by_a_foreign_key(&session.access_token);

    // Act
    let response = introspect(&app, KEY, &forged).await;

    // Assert
    assert_inactive(response).await;
}

#[tokio::test]
async fn a_token_for_another_audience_is_inactive() {
    // Arrange: signed with the service's own key, but for "billing".
    let app = spawn_service_app().await;
    let session = app.new_user().await;
    let billing = access_tokens_for(&app, "http://localhost:8080", "billing");
    let (token, _) = billing
        .issue(subject(&session), crate::helpers::system_now())
        .unwrap();

    // Act
    let response = introspect(&app, KEY, &token).await;

    // Assert
    assert_inactive(response).await;
}

#[tokio::test]
async fn a_logged_out_sessions_token_is_inactive_at_once() {
    // Arrange: the token was introspected (and so cached) while live.
    let app = spawn_service_app().await;
    let session = app.new_user().await;
    assert_active(introspect(&app, KEY, &session.access_token).await).await;

    // Act
    let logout = app.logout(&session.access_token, None).await;

    // Assert
    assert_eq!(logout.status(), StatusCode::NO_CONTENT);
    assert_inactive(introspect(&app, KEY, &session.access_token).await).await;
}

#[tokio::test]
async fn a_token_revoked_through_the_revocation_endpoint_is_inactive() {
    // Arrange
    let app = spawn_service_app().await;
    let session = app.new_user().await;
    assert_active(introspect(&app, KEY, &session.access_token).await).await;

    // Act: RFC 7009 revocation of the refresh token ends the session.
    let revoke = app
        .post("/v1/revoke")
        .form(&[
            ("token", session.refresh_token.as_str()),
            ("token_type_hint", "refresh_token"),
        ])
        .send()
        .await
        .unwrap();

    // Assert
    assert_eq!(revoke.status(), StatusCode::OK);
    assert_inactive(introspect(&app, KEY, &session.access_token).await).await;
}

#[tokio::test]
async fn a_password_change_makes_the_other_sessions_tokens_inactive() {
    // Arrange: two sessions of one user.
    let app = spawn_service_app().await;
    let phone = app.new_user_with_email("ann@example.com").await;
    let laptop = Session::from_body(
        app.login("ann@example.com", STRONG_PASSWORD)
            .await
            .json()
            .await
            .unwrap(),
    );
    assert_active(introspect(&app, KEY, &laptop.access_token).await).await;

    // Act
    let change = app
        .change_password(
            &phone.access_token,
            &json!({
                "current_password": STRONG_PASSWORD,
                "new_password": "a completely different passphrase 7",
            }),
        )
        .await;

    // Assert
    assert_eq!(change.status(), StatusCode::NO_CONTENT);
    assert_inactive(introspect(&app, KEY, &laptop.access_token).await).await;
    assert_active(introspect(&app, KEY, &phone.access_token).await).await;
}

#[tokio::test]
async fn a_refresh_token_is_not_an_active_access_token() {
    // Arrange
    let app = spawn_service_app().await;
    let session = app.new_user().await;

    // Act
    let response = introspect(&app, KEY, &session.refresh_token).await;

    // Assert
    assert_inactive(response).await;
}

#[tokio::test]
async fn introspection_without_a_valid_service_key_is_invalid_client() {
    // Arrange
    let app = spawn_service_app().await;
    let session = app.new_user().await;
    let wrong = "sk_test_not_a_configured_key";

    // Act
    let missing = introspect(&app, None, &session.access_token).await;
    let wrong_key = introspect(&app, Some(wrong), &session.access_token).await;
    let user_token = introspect(&app, Some(&session.access_token), &session.access_token).await;
    let basic = app
        .post("/v1/introspect")
        .basic_auth("api", Some(INTROSPECT_KEY))
        .form(&[("token", session.access_token.as_str())])
        .send()
        .await
        .unwrap();

    // Assert
    assert_error(missing, StatusCode::UNAUTHORIZED, "invalid_client").await;
    let body = assert_error(wrong_key, StatusCode::UNAUTHORIZED, "invalid_client").await;
    assert!(!body.to_string().contains(wrong), "{body}");
    let body = assert_error(user_token, StatusCode::UNAUTHORIZED, "invalid_client").await;
    assert!(!body.to_string().contains(&session.access_token));
    assert_error(basic, StatusCode::UNAUTHORIZED, "invalid_client").await;
}

#[tokio::test]
async fn a_key_without_the_introspect_scope_is_forbidden() {
    // Arrange
    let app = spawn_service_app().await;
    let session = app.new_user().await;

    // Act
    let response = introspect(&app, Some(ADMIN_KEY), &session.access_token).await;

    // Assert
    assert_error(response, StatusCode::FORBIDDEN, "forbidden").await;
}

#[tokio::test]
async fn a_missing_token_parameter_is_invalid_request() {
    // Arrange
    let app = spawn_service_app().await;
    let empty_form: &[(&str, &str)] = &[];

    // Act
    let form = app
        .post("/v1/introspect")
        .bearer_auth(INTROSPECT_KEY)
        .form(empty_form)
        .send()
        .await
        .unwrap();
    let other_field = app
        .post("/v1/introspect")
        .bearer_auth(INTROSPECT_KEY)
        .form(&[("token_type_hint", "access_token")])
        .send()
        .await
        .unwrap();
    let json = introspect_json(&app, KEY, &json!({})).await;
    let mistyped = introspect_json(&app, KEY, &json!({ "token": 42 })).await;

    // Assert
    for response in [form, other_field, json, mistyped] {
        assert_error(response, StatusCode::BAD_REQUEST, "invalid_request").await;
    }
}

#[tokio::test]
async fn a_text_plain_body_is_unsupported_media_type() {
    // Arrange
    let app = spawn_service_app().await;
    let session = app.new_user().await;

    // Act
    let response = app
        .post("/v1/introspect")
        .bearer_auth(INTROSPECT_KEY)
        .header(CONTENT_TYPE, "text/plain")
        .body(format!("token={}", session.access_token))
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
async fn a_key_created_by_the_cli_works_without_a_restart() {
    // Arrange: the app is running when the key is written to its table.
    let app = spawn_service_app().await;
    let session = app.new_user().await;
    let key = create_cli_key(&app, "cli", &[Scope::Introspect]).await;

    // Act
    let response =
        until_key_known(|| introspect_request(&app, Some(&key), &session.access_token)).await;

    // Assert
    let body = assert_active(response).await;
    assert_eq!(body["sub"], session.user_id.as_str());
}

#[tokio::test]
async fn a_cli_key_with_only_the_admin_scope_cannot_introspect() {
    // Arrange
    let app = spawn_service_app().await;
    let session = app.new_user().await;
    let key = create_cli_key(&app, "cli", &[Scope::Admin]).await;

    // Act
    let response =
        until_key_known(|| introspect_request(&app, Some(&key), &session.access_token)).await;

    // Assert
    assert_error(response, StatusCode::FORBIDDEN, "forbidden").await;
}

#[tokio::test]
async fn a_revoked_cli_key_is_not_loaded_again() {
    // Arrange: a table key the app knows.
    let app = spawn_service_app().await;
    let session = app.new_user().await;
    let key = create_cli_key(&app, "cli", &[Scope::Introspect]).await;
    app.core.service_keys.reload().await.unwrap();
    assert!(app.core.service_keys.authenticate(&key).await.is_some());
    assert_active(introspect(&app, Some(&key), &session.access_token).await).await;

    // Act
    let now = crate::helpers::system_now();
    let revoked = app.store.revoke_service_key("cli", now).await.unwrap();
    app.core.service_keys.reload().await.unwrap();

    // Assert
    assert!(revoked);
    assert!(app.core.service_keys.authenticate(&key).await.is_none());
    let response = introspect(&app, Some(&key), &session.access_token).await;
    assert_error(response, StatusCode::UNAUTHORIZED, "invalid_client").await;
    // Revoking again changes nothing; the configured keys still work.
    assert!(!app.store.revoke_service_key("cli", now).await.unwrap());
    assert_active(introspect(&app, KEY, &session.access_token).await).await;
}

/// Polls B's introspection until it answers inactive; panics after one second.
async fn inactive_within_a_second(app: &TestApp, token: &str) {
    let inactive = within(Duration::from_secs(1), move || async move {
        let body: Value = introspect(app, KEY, token).await.json().await.unwrap();
        if body == json!({ "active": false }) {
            return true;
        }
        assert_eq!(body["active"], true, "{body}");
        false
    })
    .await;
    assert!(
        inactive,
        "the other instance still calls a logged-out token active after 1 s"
    );
}

#[tokio::test]
async fn a_logout_on_one_instance_is_reflected_by_anothers_introspection() {
    // Arrange: two instances on one database; B has seen the token as active.
    let a = spawn_service_app().await;
    let b = spawn_on(a.db.clone(), with_test_keys).await;
    let session = a.new_user().await;
    assert_active(introspect(&b, KEY, &session.access_token).await).await;
    assert_active(introspect(&b, KEY, &session.access_token).await).await;

    // Act
    let logout = a.logout(&session.access_token, None).await;

    // Assert
    assert_eq!(logout.status(), StatusCode::NO_CONTENT);
    inactive_within_a_second(&b, &session.access_token).await;
}

#[tokio::test]
async fn a_correctly_signed_token_that_is_not_yet_valid_is_refused() {
    // Arrange: the real token's claims with `nbf` an hour ahead, signed by the service's key.
    let app = spawn_service_app().await;
    let session = app.new_user().await;
    let kid = kid_of(&session.access_token);
    let keys = app.store.all_signing_keys().await.unwrap();
    let own = keys.iter().find(|k| k.kid == kid).expect("the signing key");
    let mut claims = claims_of(&session.access_token);
    claims["nbf"] = json!(crate::helpers::system_now() + 3600);
    let early = sign_access_token(&claims, &kid, &own.private_der);
    // The same claims without the future nbf are accepted: only nbf differs.
    claims["nbf"] = json!(crate::helpers::system_now() - 5);
    let valid = sign_access_token(&claims, &kid, &own.private_der);

    // Act + Assert
    assert_inactive(introspect(&app, KEY, &early).await).await;
    let me = app.me(&early).await;
    assert_error(me, StatusCode::UNAUTHORIZED, "invalid_token").await;
    assert_active(introspect(&app, KEY, &valid).await).await;
}
