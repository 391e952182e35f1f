//! The admin API (`admin` scope): a user's sessions, revoking them, deleting the user, and
//! the audit trail.

use reqwest::header::USER_AGENT;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use sessiond::credentials::service_keys::Scope;

use crate::helpers::{STRONG_PASSWORD, TestApp, assert_error};
use crate::service::{
    ADMIN_KEY, INTROSPECT_KEY, admin, assert_inactive, create_cli_key, introspect,
    spawn_service_app, until_key_known,
};

const KEY: Option<&str> = Some(ADMIN_KEY);
const NEW_PASSWORD: &str = "a completely different passphrase 7";
const WRONG_PASSWORD: &str = "not the right passphrase at all 9";
const UA: &str = "sessiond-admin-tests/1.0";

fn sessions_path(user_id: &str) -> String {
    format!("/v1/admin/users/{user_id}/sessions")
}

fn revoke_path(user_id: &str) -> String {
    format!("/v1/admin/users/{user_id}/revoke-sessions")
}

fn user_path(user_id: &str) -> String {
    format!("/v1/admin/users/{user_id}")
}

async fn listed_session_ids(app: &TestApp, user_id: &str) -> Vec<String> {
    let response = admin(app, Method::GET, &sessions_path(user_id), KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    let mut ids: Vec<String> = body["sessions"]
        .as_array()
        .expect("a sessions array")
        .iter()
        .map(|s| s["id"].as_str().expect("a session id").to_string())
        .collect();
    ids.sort();
    ids
}

async fn audit(app: &TestApp, query: &str) -> reqwest::Response {
    admin(app, Method::GET, &format!("/v1/admin/audit{query}"), KEY)
        .send()
        .await
        .unwrap()
}

async fn audit_events(app: &TestApp, query: &str) -> (String, Vec<Value>) {
    let response = audit(app, query).await;
    assert_eq!(response.status(), StatusCode::OK);
    let text = response.text().await.unwrap();
    let body: Value = serde_json::from_str(&text).unwrap();
    let events = body["events"].as_array().expect("an events array").clone();
    (text, events)
}

#[tokio::test]
async fn listing_a_users_sessions_shows_every_live_one() {
    // Arrange: one signup and one login, and another user's session.
    let app = spawn_service_app().await;
    let first = app.new_user_with_email("ann@example.com").await;
    let second = app
        .login_ok_as(UA, "ann@example.com", STRONG_PASSWORD)
        .await;
    let other = app.new_user().await;

    // Act
    let response = admin(&app, Method::GET, &sessions_path(&first.user_id), KEY)
        .send()
        .await
        .unwrap();

    // Assert
    assert_eq!(response.status(), StatusCode::OK);
    let text = response.text().await.unwrap();
    let body: Value = serde_json::from_str(&text).unwrap();
    let sessions = body["sessions"].as_array().unwrap();
    assert_eq!(sessions.len(), 2, "{body}");
    let mut ids: Vec<&str> = sessions.iter().map(|s| s["id"].as_str().unwrap()).collect();
    ids.sort();
    let mut expected = vec![first.session_id.as_str(), second.session_id.as_str()];
    expected.sort();
    assert_eq!(ids, expected);
    assert!(!ids.contains(&other.session_id.as_str()));
    for session in sessions {
        assert!(session["created_at"].is_string(), "{session}");
        assert!(session["last_seen_at"].is_string(), "{session}");
        assert!(session["expires_at"].is_i64(), "{session}");
        assert_eq!(session["kind"], "password");
    }
    for secret in [
        &first.access_token,
        &first.refresh_token,
        &second.refresh_token,
    ] {
        assert!(!text.contains(secret.as_str()));
    }

    // A logged-out session is no longer listed.
    app.logout(&second.access_token, None).await;
    assert_eq!(
        listed_session_ids(&app, &first.user_id).await,
        vec![first.session_id.clone()]
    );
}

#[tokio::test]
async fn an_unknown_user_is_not_found() {
    // Arrange
    let app = spawn_service_app().await;
    let nobody = uuid::Uuid::now_v7().to_string();

    for user_id in [nobody.as_str(), "not-a-uuid"] {
        // Act
        let list = admin(&app, Method::GET, &sessions_path(user_id), KEY)
            .send()
            .await
            .unwrap();
        let revoke = admin(&app, Method::POST, &revoke_path(user_id), KEY)
            .send()
            .await
            .unwrap();
        let delete = admin(&app, Method::DELETE, &user_path(user_id), KEY)
            .send()
            .await
            .unwrap();

        // Assert
        for response in [list, revoke, delete] {
            assert_error(response, StatusCode::NOT_FOUND, "not_found").await;
        }
    }
}

#[tokio::test]
async fn the_admin_api_needs_a_key_with_the_admin_scope() {
    // Arrange
    let app = spawn_service_app().await;
    let session = app.new_user().await;
    let user = session.user_id.as_str();
    let endpoints = [
        (Method::GET, sessions_path(user)),
        (Method::POST, revoke_path(user)),
        (Method::DELETE, user_path(user)),
        (Method::GET, format!("/v1/admin/audit?user_id={user}")),
    ];

    for (method, path) in endpoints {
        // Act
        let introspect_only = admin(&app, method.clone(), &path, Some(INTROSPECT_KEY))
            .send()
            .await
            .unwrap();
        let no_key = admin(&app, method.clone(), &path, None)
            .send()
            .await
            .unwrap();
        let user_token = admin(&app, method.clone(), &path, Some(&session.access_token))
            .send()
            .await
            .unwrap();
        let wrong_key = admin(&app, method.clone(), &path, Some("sk_wrong"))
            .send()
            .await
            .unwrap();

        // Assert
        assert_error(introspect_only, StatusCode::FORBIDDEN, "forbidden").await;
        assert_error(no_key, StatusCode::UNAUTHORIZED, "invalid_client").await;
        assert_error(user_token, StatusCode::UNAUTHORIZED, "invalid_client").await;
        assert_error(wrong_key, StatusCode::UNAUTHORIZED, "invalid_client").await;
    }
    // None of that touched the user.
    assert_eq!(app.me(&session.access_token).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_cli_created_admin_key_works_without_a_restart() {
    // Arrange
    let app = spawn_service_app().await;
    let session = app.new_user().await;
    let key = create_cli_key(&app, "cli", &[Scope::Admin]).await;
    let path = sessions_path(&session.user_id);

    // Act
    let response = until_key_known(|| admin(&app, Method::GET, &path, Some(&key))).await;

    // Assert
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["sessions"][0]["id"], session.session_id.as_str());
    // It has no introspect scope.
    let introspection = introspect(&app, Some(&key), &session.access_token).await;
    assert_error(introspection, StatusCode::FORBIDDEN, "forbidden").await;
}

#[tokio::test]
async fn revoking_a_users_sessions_ends_all_of_them_and_no_one_elses() {
    // Arrange
    let app = spawn_service_app().await;
    let phone = app.new_user_with_email("ann@example.com").await;
    let laptop = app
        .login_ok_as(UA, "ann@example.com", STRONG_PASSWORD)
        .await;
    let other = app.new_user().await;
    for token in [&phone.access_token, &laptop.access_token] {
        assert_eq!(app.me(token).await.status(), StatusCode::OK);
    }

    // Act
    let response = admin(&app, Method::POST, &revoke_path(&phone.user_id), KEY)
        .send()
        .await
        .unwrap();

    // Assert
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    for session in [&phone, &laptop] {
        let me = app.me(&session.access_token).await;
        assert_error(me, StatusCode::UNAUTHORIZED, "invalid_token").await;
        let refresh = app.refresh(&session.refresh_token).await;
        assert_error(refresh, StatusCode::UNAUTHORIZED, "session_revoked").await;
        let introspection = introspect(&app, Some(INTROSPECT_KEY), &session.access_token).await;
        assert_inactive(introspection).await;
    }
    assert!(listed_session_ids(&app, &phone.user_id).await.is_empty());
    assert_eq!(app.me(&other.access_token).await.status(), StatusCode::OK);
    assert_eq!(listed_session_ids(&app, &other.user_id).await.len(), 1);
    // The user can still log in again.
    app.login_ok_as(UA, "ann@example.com", STRONG_PASSWORD)
        .await;
}

#[tokio::test]
async fn deleting_a_user_removes_the_account_and_its_sessions() {
    // Arrange
    let app = spawn_service_app().await;
    let phone = app.new_user_with_email("ann@example.com").await;
    let laptop = app
        .login_ok_as(UA, "ann@example.com", STRONG_PASSWORD)
        .await;
    let other = app.new_user().await;
    assert_eq!(app.me(&phone.access_token).await.status(), StatusCode::OK);

    // Act
    let response = admin(&app, Method::DELETE, &user_path(&phone.user_id), KEY)
        .send()
        .await
        .unwrap();

    // Assert
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    for session in [&phone, &laptop] {
        let me = app.me(&session.access_token).await;
        assert_error(me, StatusCode::UNAUTHORIZED, "invalid_token").await;
        let refresh = app.refresh(&session.refresh_token).await;
        assert_eq!(refresh.status(), StatusCode::UNAUTHORIZED);
        let body: Value = refresh.json().await.unwrap();
        assert!(
            body["error"] == "invalid_refresh_token" || body["error"] == "session_revoked",
            "{body}"
        );
        let introspection = introspect(&app, Some(INTROSPECT_KEY), &session.access_token).await;
        assert_inactive(introspection).await;
    }
    let login = app.login("ann@example.com", STRONG_PASSWORD).await;
    assert_error(login, StatusCode::UNAUTHORIZED, "invalid_credentials").await;
    let list = admin(&app, Method::GET, &sessions_path(&phone.user_id), KEY)
        .send()
        .await
        .unwrap();
    assert_error(list, StatusCode::NOT_FOUND, "not_found").await;
    assert_eq!(app.me(&other.access_token).await.status(), StatusCode::OK);

    // The email is free again, for a new account.
    let again = app.new_user_with_email("ann@example.com").await;
    assert_ne!(again.user_id, phone.user_id);
    // Deleting the old account again finds nothing.
    let repeat = admin(&app, Method::DELETE, &user_path(&phone.user_id), KEY)
        .send()
        .await
        .unwrap();
    assert_error(repeat, StatusCode::NOT_FOUND, "not_found").await;
    assert_eq!(app.me(&again.access_token).await.status(), StatusCode::OK);
    // The deletion itself is on the audit trail, which outlives the user.
    let (_, events) = audit_events(&app, &format!("?user_id={}", phone.user_id)).await;
    assert!(
        events.iter().any(|e| e["type"] == "admin_deleted_user"),
        "{events:?}"
    );
}

#[tokio::test]
async fn the_audit_trail_records_a_users_security_events() {
    // Arrange: one of each event, all from the same client.
    let app = spawn_service_app().await;
    let started = crate::helpers::system_now();
    let email = "ann@example.com";
    let first = app.new_user_as(UA, email).await;
    let wrong = json!({ "email": email, "password": WRONG_PASSWORD });
    let failed = app.post_json_as("/v1/login", UA, &wrong).await;
    assert_error(failed, StatusCode::UNAUTHORIZED, "invalid_credentials").await;
    let second = app.login_ok_as(UA, email, STRONG_PASSWORD).await;
    let change = app
        .post("/v1/password")
        .header(USER_AGENT, UA)
        .bearer_auth(&first.access_token)
        .json(&json!({ "current_password": STRONG_PASSWORD, "new_password": NEW_PASSWORD }))
        .send()
        .await
        .unwrap();
    assert_eq!(change.status(), StatusCode::NO_CONTENT);
    // Reuse: rotate twice, then replay the first refresh token.
    let third = app.login_ok_as(UA, email, NEW_PASSWORD).await;
    let rotated = app.refresh_ok_as(UA, &third.refresh_token).await;
    let rotated_again = app.refresh_ok_as(UA, &rotated.refresh_token).await;
    let spent = json!({ "refresh_token": third.refresh_token });
    let replay = app.post_json_as("/v1/token/refresh", UA, &spent).await;
    assert_error(replay, StatusCode::UNAUTHORIZED, "refresh_token_reused").await;
    let fourth = app.login_ok_as(UA, email, NEW_PASSWORD).await;
    let logout = app
        .post("/v1/logout")
        .header(USER_AGENT, UA)
        .bearer_auth(&fourth.access_token)
        .send()
        .await
        .unwrap();
    assert_eq!(logout.status(), StatusCode::NO_CONTENT);
    let fifth = app.login_ok_as(UA, email, NEW_PASSWORD).await;
    let revoke = admin(&app, Method::POST, &revoke_path(&first.user_id), KEY)
        .header(USER_AGENT, UA)
        .send()
        .await
        .unwrap();
    assert_eq!(revoke.status(), StatusCode::NO_CONTENT);
    // Another user's events must not show up.
    let other = app.new_user().await;
    let finished = crate::helpers::system_now();

    // Act
    let (text, events) = audit_events(&app, &format!("?user_id={}", first.user_id)).await;

    // Assert: every kind is there.
    let types: Vec<&str> = events
        .iter()
        .map(|e| e["type"].as_str().expect("a type"))
        .collect();
    for expected in [
        "signup",
        "login_succeeded",
        "login_failed",
        "password_changed",
        "refresh_reuse_detected",
        "logout",
        "admin_revoked_sessions",
    ] {
        assert!(types.contains(&expected), "no {expected} in {types:?}");
    }
    // Newest first.
    assert_eq!(types.first(), Some(&"admin_revoked_sessions"), "{types:?}");
    assert_eq!(types.last(), Some(&"signup"), "{types:?}");
    let ids: Vec<&str> = events.iter().map(|e| e["id"].as_str().unwrap()).collect();
    let mut sorted = ids.clone();
    sorted.sort_by(|a, b| b.cmp(a));
    assert_eq!(ids, sorted);
    // Every event has the contract's fields, about this user, from this client.
    let (from, to) = (
        sessiond::clock::rfc3339(started),
        sessiond::clock::rfc3339(finished),
    );
    for event in &events {
        assert!(event["id"].as_str().is_some_and(|id| !id.is_empty()));
        let at = event["at"].as_str().expect("at is a string");
        assert_eq!(at.len(), "2025-01-01T00:00:00Z".len(), "{event}");
        assert!(at.ends_with('Z') && at.as_bytes()[10] == b'T', "{event}");
        assert!(
            from.as_str() <= at && at <= to.as_str(),
            "{at} not in {from}..{to}"
        );
        assert_eq!(event["user_id"], first.user_id.as_str(), "{event}");
        assert_eq!(event["ip_address"], "127.0.0.1", "{event}");
        assert_eq!(event["user_agent"], UA, "{event}");
        assert!(event.get("session_id").is_some(), "{event}");
        assert!(event.get("detail").is_some(), "{event}");
    }
    let of = |kind: &str| events.iter().find(|e| e["type"] == kind).unwrap();
    assert_eq!(of("signup")["session_id"], first.session_id.as_str());
    assert_eq!(of("logout")["session_id"], fourth.session_id.as_str());
    assert_eq!(
        of("refresh_reuse_detected")["session_id"],
        third.session_id.as_str()
    );
    assert!(!text.contains(&other.user_id));
    // No password, token or key anywhere in the trail.
    let mut secrets = vec![
        STRONG_PASSWORD.to_string(),
        WRONG_PASSWORD.to_string(),
        NEW_PASSWORD.to_string(),
        ADMIN_KEY.to_string(),
    ];
    for session in [
        &first,
        &second,
        &third,
        &rotated,
        &rotated_again,
        &fourth,
        &fifth,
    ] {
        secrets.push(session.access_token.clone());
        secrets.push(session.refresh_token.clone());
    }
    for secret in &secrets {
        assert!(
            !text.contains(secret.as_str()),
            "the audit trail leaks a secret"
        );
    }
}

#[tokio::test]
async fn the_audit_limit_is_validated_and_applied_newest_first() {
    // Arrange: a few events.
    let app = spawn_service_app().await;
    let session = app.new_user_with_email("ann@example.com").await;
    app.login_ok_as(UA, "ann@example.com", STRONG_PASSWORD)
        .await;
    app.logout(&session.access_token, None).await;
    let query = |limit: &str| format!("?user_id={}&limit={limit}", session.user_id);

    // Act
    let (_, all) = audit_events(&app, &format!("?user_id={}", session.user_id)).await;
    let (_, two) = audit_events(&app, &query("2")).await;
    let (_, unfiltered) = audit_events(&app, "?limit=1").await;

    // Assert
    assert_eq!(all.len(), 3, "{all:?}");
    assert_eq!(two.len(), 2);
    assert_eq!(two[..], all[..2]);
    assert_eq!(two[0]["type"], "logout");
    assert_eq!(two[1]["type"], "login_succeeded");
    assert_eq!(unfiltered.len(), 1);
    for bad in ["0", "-1", "abc", "1.5", "100000"] {
        let response = audit(&app, &query(bad)).await;
        assert_error(response, StatusCode::BAD_REQUEST, "invalid_request").await;
    }
    for bad in ["", "ann", "not-a-uuid"] {
        let response = audit(&app, &format!("?user_id={bad}")).await;
        assert_error(response, StatusCode::BAD_REQUEST, "invalid_request").await;
    }
}
