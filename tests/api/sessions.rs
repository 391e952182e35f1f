//! `GET /v1/sessions`, `DELETE /v1/sessions/{id}`, the recorded client, and logout scopes.

use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::{
    STRONG_PASSWORD, Session, assert_error, fresh_email, spawn_app, spawn_app_with,
};

/// `YYYY-MM-DDTHH:MM:SS[.frac](Z|+00:00)`: an RFC 3339 date-time in UTC.
fn is_rfc3339_utc(value: &Value) -> bool {
    let Some(s) = value.as_str() else {
        return false;
    };
    let Some(rest) = s.strip_suffix('Z').or_else(|| s.strip_suffix("+00:00")) else {
        return false;
    };
    let b = rest.as_bytes();
    let digits = |range: std::ops::Range<usize>| b[range].iter().all(u8::is_ascii_digit);
    b.len() >= 19
        && digits(0..4)
        && b[4] == b'-'
        && digits(5..7)
        && b[7] == b'-'
        && digits(8..10)
        && b[10] == b'T'
        && digits(11..13)
        && b[13] == b':'
        && digits(14..16)
        && b[16] == b':'
        && digits(17..19)
        && (b.len() == 19 || (b[19] == b'.' && b.len() > 20 && digits(20..b.len())))
}

#[tokio::test]
async fn a_user_lists_each_of_their_sessions_once() {
    // Arrange
    let app = spawn_app().await;
    let email = fresh_email();
    let first = app.new_user_as("agent-A/1.0", &email).await;
    let second = app
        .login_ok_as("agent-B/2.0", &email, STRONG_PASSWORD)
        .await;

    // Act
    let sessions = app.sessions_of(&second.access_token).await;

    // Assert
    assert_eq!(sessions.len(), 2, "{sessions:?}");
    let current: Vec<&Value> = sessions.iter().filter(|s| s["current"] == true).collect();
    assert_eq!(current.len(), 1, "{sessions:?}");
    assert_eq!(current[0]["id"], second.session_id.as_str());
    for (session, expected) in [(&first, "agent-A/1.0"), (&second, "agent-B/2.0")] {
        let listed = sessions
            .iter()
            .find(|s| s["id"] == session.session_id.as_str())
            .unwrap_or_else(|| panic!("session {} is not listed", session.session_id));
        assert_eq!(listed["user_agent"], expected, "{listed}");
        assert_eq!(listed["ip_address"], "127.0.0.1", "{listed}");
        assert_eq!(listed["kind"], "password", "{listed}");
        assert!(listed["expires_at"].is_i64(), "{listed}");
        assert!(is_rfc3339_utc(&listed["created_at"]), "{listed}");
        assert!(is_rfc3339_utc(&listed["last_seen_at"]), "{listed}");
        assert!(listed.get("provider").is_some(), "{listed}");
    }
    let from_first = app.sessions_of(&first.access_token).await;
    let current: Vec<&Value> = from_first.iter().filter(|s| s["current"] == true).collect();
    assert_eq!(current.len(), 1);
    assert_eq!(current[0]["id"], first.session_id.as_str());
}

#[tokio::test]
async fn deleting_another_own_session_ends_it() {
    // Arrange
    let app = spawn_app().await;
    let email = fresh_email();
    let other = app.new_user_as("agent-A", &email).await;
    let me = app.login_ok_as("agent-B", &email, STRONG_PASSWORD).await;

    // Act
    let response = app
        .delete_session(&me.access_token, &other.session_id)
        .await;

    // Assert
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    let sessions = app.sessions_of(&me.access_token).await;
    assert_eq!(sessions.len(), 1, "{sessions:?}");
    assert_eq!(sessions[0]["id"], me.session_id.as_str());
    let gone = app.me(&other.access_token).await;
    assert_error(gone, StatusCode::UNAUTHORIZED, "invalid_token").await;
    let refresh = app.refresh(&other.refresh_token).await;
    assert_error(refresh, StatusCode::UNAUTHORIZED, "session_revoked").await;
    assert_eq!(app.me(&me.access_token).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn deleting_a_session_twice_is_not_found_the_second_time() {
    // Arrange
    let app = spawn_app().await;
    let email = fresh_email();
    let other = app.new_user_as("agent-A", &email).await;
    let me = app.login_ok_as("agent-B", &email, STRONG_PASSWORD).await;
    let first = app
        .delete_session(&me.access_token, &other.session_id)
        .await;
    assert_eq!(first.status(), StatusCode::NO_CONTENT);

    // Act
    let second = app
        .delete_session(&me.access_token, &other.session_id)
        .await;

    // Assert
    assert_error(second, StatusCode::NOT_FOUND, "not_found").await;
}

#[tokio::test]
async fn deleting_another_users_session_is_not_found_and_harmless() {
    // Arrange
    let app = spawn_app().await;
    let me = app.new_user().await;
    let victim = app.new_user().await;

    // Act
    let response = app
        .delete_session(&me.access_token, &victim.session_id)
        .await;

    // Assert
    assert_error(response, StatusCode::NOT_FOUND, "not_found").await;
    assert_eq!(app.me(&victim.access_token).await.status(), StatusCode::OK);
    let refreshed = app.refresh(&victim.refresh_token).await;
    assert_eq!(refreshed.status(), StatusCode::OK);
    assert_eq!(app.sessions_of(&victim.access_token).await.len(), 1);
}

#[tokio::test]
async fn deleting_an_unknown_session_is_not_found() {
    // Arrange
    let app = spawn_app().await;
    let me = app.new_user().await;
    let unknown = uuid::Uuid::new_v4().to_string();

    // Act
    let response = app.delete_session(&me.access_token, &unknown).await;

    // Assert
    assert_error(response, StatusCode::NOT_FOUND, "not_found").await;
    assert_eq!(app.me(&me.access_token).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn listing_sessions_requires_a_token() {
    // Arrange
    let app = spawn_app().await;

    // Act
    let response = app.get("/v1/sessions").send().await.unwrap();

    // Assert
    assert_error(response, StatusCode::UNAUTHORIZED, "invalid_token").await;
}

#[tokio::test]
async fn deleting_a_session_requires_a_token() {
    // Arrange
    let app = spawn_app().await;
    let user = app.new_user().await;

    // Act
    let response = app
        .client
        .delete(app.url(&format!("/v1/sessions/{}", user.session_id)))
        .send()
        .await
        .unwrap();

    // Assert
    assert_error(response, StatusCode::UNAUTHORIZED, "invalid_token").await;
    assert_eq!(app.me(&user.access_token).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_revoked_session_cannot_list_sessions() {
    // Arrange
    let app = spawn_app().await;
    let user = app.new_user().await;
    assert_eq!(
        app.logout(&user.access_token, None).await.status(),
        StatusCode::NO_CONTENT
    );

    // Act
    let response = app.list_sessions(&user.access_token).await;

    // Assert
    assert_error(response, StatusCode::UNAUTHORIZED, "invalid_token").await;
}

#[tokio::test]
async fn behind_a_trusted_proxy_the_last_forwarded_hop_is_recorded() {
    // Arrange
    let app = spawn_app_with(|s| s.server.trust_proxy = true).await;
    let email = fresh_email();
    app.new_user_with_email(&email).await;

    // Act
    let response = app
        .login_from("203.0.113.7, 198.51.100.9", &email, STRONG_PASSWORD)
        .await;

    // Assert
    assert_eq!(response.status(), StatusCode::OK);
    let session = Session::from_body(response.json().await.unwrap());
    let sessions = app.sessions_of(&session.access_token).await;
    let listed = sessions
        .iter()
        .find(|s| s["id"] == session.session_id.as_str())
        .expect("the new session is listed");
    assert_eq!(listed["ip_address"], "198.51.100.9", "{listed}");
}

#[tokio::test]
async fn without_a_trusted_proxy_forwarded_headers_are_ignored() {
    // Arrange
    let app = spawn_app().await;
    let email = fresh_email();
    app.new_user_with_email(&email).await;

    // Act
    let response = app
        .login_from("203.0.113.7, 198.51.100.9", &email, STRONG_PASSWORD)
        .await;

    // Assert
    assert_eq!(response.status(), StatusCode::OK);
    let session = Session::from_body(response.json().await.unwrap());
    let sessions = app.sessions_of(&session.access_token).await;
    let listed = sessions
        .iter()
        .find(|s| s["id"] == session.session_id.as_str())
        .expect("the new session is listed");
    assert_eq!(listed["ip_address"], "127.0.0.1", "{listed}");
}

#[tokio::test]
async fn logout_of_other_sessions_keeps_only_the_callers() {
    // Arrange
    let app = spawn_app().await;
    let email = fresh_email();
    let a = app.new_user_as("device-A", &email).await;
    let b = app.login_ok_as("device-B", &email, STRONG_PASSWORD).await;
    let c = app.login_ok_as("device-C", &email, STRONG_PASSWORD).await;
    let stranger = app.new_user().await;

    // Act
    let response = app.logout(&a.access_token, Some("others")).await;

    // Assert
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    assert_eq!(app.me(&a.access_token).await.status(), StatusCode::OK);
    for ended in [&b, &c] {
        let me = app.me(&ended.access_token).await;
        assert_error(me, StatusCode::UNAUTHORIZED, "invalid_token").await;
        let refresh = app.refresh(&ended.refresh_token).await;
        assert_error(refresh, StatusCode::UNAUTHORIZED, "session_revoked").await;
    }
    let sessions = app.sessions_of(&a.access_token).await;
    assert_eq!(sessions.len(), 1, "{sessions:?}");
    assert_eq!(sessions[0]["id"], a.session_id.as_str());
    assert_eq!(
        app.me(&stranger.access_token).await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn global_logout_ends_every_session_of_the_user_only() {
    // Arrange
    let app = spawn_app().await;
    let email = fresh_email();
    let a = app.new_user_as("device-A", &email).await;
    let b = app.login_ok_as("device-B", &email, STRONG_PASSWORD).await;
    let c = app.login_ok_as("device-C", &email, STRONG_PASSWORD).await;
    let stranger = app.new_user().await;

    // Act
    let response = app.logout(&a.access_token, Some("global")).await;

    // Assert
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    for ended in [&a, &b, &c] {
        let me = app.me(&ended.access_token).await;
        assert_error(me, StatusCode::UNAUTHORIZED, "invalid_token").await;
        let refresh = app.refresh(&ended.refresh_token).await;
        assert_error(refresh, StatusCode::UNAUTHORIZED, "session_revoked").await;
    }
    assert_eq!(
        app.me(&stranger.access_token).await.status(),
        StatusCode::OK
    );
    assert_eq!(app.sessions_of(&stranger.access_token).await.len(), 1);
}
