//! Disabled users (`POST /v1/admin/users/{id}/disable` and `/enable`): no login (401
//! `invalid_credentials`, as for a wrong password), no refresh (401 `session_revoked`), no
//! bridge (403 `forbidden`), and their sessions end on every instance with reason `admin`.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::bridge_keys::{SUPABASE, supabase_provider, supabase_token};
use crate::helpers::{
    STRONG_PASSWORD, Session, TestApp, assert_error, refused_within_a_second, spawn_app_with,
    spawn_on,
};
use crate::service::{ADMIN_KEY, EVENTS_KEY, INTROSPECT_KEY, admin, test_keys, with_test_keys};

async fn spawn_admin_app() -> TestApp {
    spawn_app_with(|settings| {
        settings.service_keys = test_keys();
        settings.bridge.providers = vec![supabase_provider()];
    })
    .await
}

async fn set_disabled(
    app: &TestApp,
    user_id: &str,
    disabled: bool,
    key: Option<&str>,
) -> reqwest::Response {
    let action = if disabled { "disable" } else { "enable" };
    admin(
        app,
        Method::POST,
        &format!("/v1/admin/users/{user_id}/{action}"),
        key,
    )
    .send()
    .await
    .unwrap()
}

#[tokio::test]
async fn a_disabled_user_cannot_log_in_refresh_or_bridge_and_their_sessions_end_everywhere() {
    // Arrange: a password user with two sessions, one seen by a second instance.
    let a = spawn_admin_app().await;
    let b = spawn_on(a.db.clone(), with_test_keys).await;
    crate::helpers::until_listening(&b).await;
    let phone = a.new_user_with_email("ann@example.com").await;
    let laptop = Session::from_body(
        a.login("ann@example.com", STRONG_PASSWORD)
            .await
            .json()
            .await
            .unwrap(),
    );
    let bystander = a.new_user().await;
    assert_eq!(b.me(&laptop.access_token).await.status(), StatusCode::OK);

    // Act
    let response = set_disabled(&a, &phone.user_id, true, Some(ADMIN_KEY)).await;

    // Assert
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    refused_within_a_second(&b, &laptop.access_token).await;
    for token in [&phone.access_token, &laptop.access_token] {
        assert_error(a.me(token).await, StatusCode::UNAUTHORIZED, "invalid_token").await;
    }
    let right = assert_error(
        a.login("ann@example.com", STRONG_PASSWORD).await,
        StatusCode::UNAUTHORIZED,
        "invalid_credentials",
    )
    .await;
    let wrong = assert_error(
        b.login("ann@example.com", "not the right passphrase 9")
            .await,
        StatusCode::UNAUTHORIZED,
        "invalid_credentials",
    )
    .await;
    assert_eq!(right, wrong, "a disabled account gives no hint");
    assert_error(
        a.refresh(&phone.refresh_token).await,
        StatusCode::UNAUTHORIZED,
        "session_revoked",
    )
    .await;
    assert_error(
        b.refresh(&laptop.refresh_token).await,
        StatusCode::UNAUTHORIZED,
        "session_revoked",
    )
    .await;
    assert_eq!(a.me(&bystander.access_token).await.status(), StatusCode::OK);
    // The sessions ended with reason admin, on the event feed.
    let feed: Value = admin(
        &a,
        Method::GET,
        "/v1/events?after=0&limit=100",
        Some(EVENTS_KEY),
    )
    .header("accept", "application/json")
    .send()
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    let ended: Vec<&Value> = feed["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"] == "session.ended" && e["user_id"] == phone.user_id.as_str())
        .collect();
    assert_eq!(ended.len(), 2, "{feed}");
    assert!(
        ended.iter().all(|e| e["reason"] == "user_disabled"),
        "{feed}"
    );

    // Enabled again: a login works, the old sessions stay ended.
    let response = set_disabled(&b, &phone.user_id, false, Some(ADMIN_KEY)).await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        a.login("ann@example.com", STRONG_PASSWORD).await.status(),
        StatusCode::OK
    );
    assert_error(
        a.refresh(&laptop.refresh_token).await,
        StatusCode::UNAUTHORIZED,
        "session_revoked",
    )
    .await;
}

#[tokio::test]
async fn a_disabled_bridged_user_gets_403_and_no_session() {
    let app = spawn_admin_app().await;
    let subject = uuid::Uuid::new_v4().to_string();
    let first = app.bridge(SUPABASE, &supabase_token(&subject, None)).await;
    assert_eq!(first.status(), StatusCode::OK);
    let first = Session::from_body(first.json().await.unwrap());

    let response = set_disabled(&app, &first.user_id, true, Some(ADMIN_KEY)).await;

    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    let refused = assert_error(
        app.bridge(SUPABASE, &supabase_token(&subject, None)).await,
        StatusCode::FORBIDDEN,
        "forbidden",
    )
    .await;
    assert_eq!(refused["error_description"], "this account is disabled");
    let sessions = admin(
        &app,
        Method::GET,
        &format!("/v1/admin/users/{}/sessions", first.user_id),
        Some(ADMIN_KEY),
    )
    .send()
    .await
    .unwrap();
    let sessions: Value = sessions.json().await.unwrap();
    assert_eq!(sessions["sessions"], json!([]), "no session was opened");
    let types = crate::service::audit_types(&app, &first.user_id).await;
    assert_eq!(
        types[..2],
        ["bridge_refused", "admin_disabled_user"],
        "{types:?}"
    );

    assert_eq!(
        set_disabled(&app, &first.user_id, false, Some(ADMIN_KEY))
            .await
            .status(),
        StatusCode::NO_CONTENT
    );
    let again = app.bridge(SUPABASE, &supabase_token(&subject, None)).await;
    assert_eq!(again.status(), StatusCode::OK);
}

#[tokio::test]
async fn disable_and_enable_need_the_admin_scope_and_an_existing_user() {
    let app = spawn_admin_app().await;
    let session = app.new_user().await;
    let nobody = uuid::Uuid::now_v7().to_string();
    for disabled in [true, false] {
        for user_id in [nobody.as_str(), "not-a-uuid"] {
            let response = set_disabled(&app, user_id, disabled, Some(ADMIN_KEY)).await;
            assert_error(response, StatusCode::NOT_FOUND, "not_found").await;
        }
        let response = set_disabled(&app, &session.user_id, disabled, Some(INTROSPECT_KEY)).await;
        assert_error(response, StatusCode::FORBIDDEN, "forbidden").await;
        let response = set_disabled(&app, &session.user_id, disabled, None).await;
        assert_error(response, StatusCode::UNAUTHORIZED, "invalid_client").await;
        let response = set_disabled(
            &app,
            &session.user_id,
            disabled,
            Some(&session.access_token),
        )
        .await;
        assert_error(response, StatusCode::UNAUTHORIZED, "invalid_client").await;
    }
    // None of that touched the user.
    assert_eq!(app.me(&session.access_token).await.status(), StatusCode::OK);
}
