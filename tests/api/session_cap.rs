//! `sessions.max_per_user`: a session opened past the cap ends the user's least recently used
//! one (reason `evicted`), in the same transaction, whichever way it is opened.

use reqwest::{Method, StatusCode};
use serde_json::Value;
use sessiond::config::Settings;

use crate::helpers::{STRONG_PASSWORD, Session, TestApp, refused_within_a_second, spawn_app_with};
use crate::service::{ADMIN_KEY, EVENTS_KEY, admin, with_test_keys};

fn capped_at_two(s: &mut Settings) {
    with_test_keys(s);
    s.sessions.max_per_user = 2;
}

/// `GET path` with a service key, as JSON.
async fn get_json(app: &TestApp, path: &str, key: &str) -> Value {
    let response = admin(app, Method::GET, path, Some(key))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    response.json().await.unwrap()
}

/// The `session.ended` events of `user_id` as (session id, reason).
async fn ended_sessions(app: &TestApp, user_id: &str) -> Vec<(String, String)> {
    let feed = get_json(app, "/v1/events?after=0&limit=1000", EVENTS_KEY).await;
    feed["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"] == "session.ended" && e["user_id"] == user_id)
        .map(|e| {
            let text = |k: &str| e[k].as_str().unwrap().to_string();
            (text("session_id"), text("reason"))
        })
        .collect()
}

async fn live_session_ids(app: &TestApp, session: &Session) -> Vec<String> {
    let mut ids: Vec<String> = app
        .sessions_of(&session.access_token)
        .await
        .iter()
        .map(|s| s["id"].as_str().unwrap().to_string())
        .collect();
    ids.sort();
    ids
}

#[tokio::test]
async fn a_session_past_the_cap_ends_the_least_recently_used_one() {
    // Arrange: two sessions; the older one is used (refreshed) after the newer one opened.
    let app = spawn_app_with(capped_at_two).await;
    let first = app.new_user_with_email("cap@example.com").await;
    let second = app.login_ok("cap@example.com", STRONG_PASSWORD).await;
    app.advance_clock(5);
    let first = app.refresh_ok(&first.refresh_token).await;

    // Act
    let third = app.login_ok("cap@example.com", STRONG_PASSWORD).await;

    // Assert: the second (least recently used) ended with reason `evicted`; two are left.
    refused_within_a_second(&app, &second.access_token).await;
    let refreshed = app.refresh(&second.refresh_token).await;
    assert_eq!(refreshed.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(app.me(&first.access_token).await.status(), StatusCode::OK);
    let mut expected = vec![first.session_id.clone(), third.session_id.clone()];
    expected.sort();
    assert_eq!(live_session_ids(&app, &third).await, expected);
    assert_eq!(
        ended_sessions(&app, &third.user_id).await,
        [(second.session_id.clone(), "evicted".to_string())]
    );
    let audited = crate::service::audit_types(&app, &third.user_id).await;
    assert!(
        audited.iter().any(|t| t == "sessions_evicted"),
        "{audited:?}"
    );
}

#[tokio::test]
async fn concurrent_logins_past_the_cap_leave_exactly_the_cap() {
    // Arrange
    let app = spawn_app_with(capped_at_two).await;
    let owner = app.new_user_with_email("race@example.com").await;

    // Act: four logins at once (the throttle admits five checks in flight per address).
    let logins = (0..4).map(|_| app.login("race@example.com", STRONG_PASSWORD));
    let responses = futures::future::join_all(logins).await;
    let mut opened = Vec::new();
    for response in responses {
        assert_eq!(response.status(), StatusCode::OK);
        opened.push(Session::from_body(response.json().await.unwrap()));
    }

    // Assert: exactly two live sessions, and every other one ended as `evicted`.
    let path = format!("/v1/admin/users/{}/sessions", owner.user_id);
    let listed = get_json(&app, &path, ADMIN_KEY).await;
    let live = listed["sessions"].as_array().unwrap();
    assert_eq!(live.len(), 2, "{listed}");
    let live_tokens = opened
        .iter()
        .filter(|s| live.iter().any(|l| l["id"] == s.session_id.as_str()))
        .count();
    assert!(live_tokens >= 1, "{listed}");
    let ended = ended_sessions(&app, &owner.user_id).await;
    assert_eq!(ended.len(), 3, "{ended:?}");
    assert!(
        ended.iter().all(|(_, reason)| reason == "evicted"),
        "{ended:?}"
    );
}

#[tokio::test]
async fn no_cap_by_default() {
    let app = spawn_app_with(with_test_keys).await;
    let first = app.new_user_with_email("uncapped@example.com").await;
    for _ in 0..4 {
        app.login_ok("uncapped@example.com", STRONG_PASSWORD).await;
    }
    assert_eq!(live_session_ids(&app, &first).await.len(), 5);
}
