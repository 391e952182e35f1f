//! Validation at any number of live sessions: a valid token is vouched for from memory (the set
//! of recently ended sessions), never by reading its session, and no token outlives its session.

use reqwest::StatusCode;
use secrecy::ExposeSecret;
use serde_json::Value;

use crate::helpers::{TestApp, claims_of, spawn_on};
use crate::service::{
    INTROSPECT_KEY, assert_active, assert_inactive, introspect, spawn_service_app,
};

/// The value of the metric sample named `name` (no labels).
async fn metric(app: &TestApp, name: &str) -> f64 {
    let body = app.metrics_text().await;
    body.lines()
        .filter(|line| !line.starts_with('#'))
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' '))
        .and_then(|value| value.parse().ok())
        .unwrap_or_else(|| panic!("no sample {name} in:\n{body}"))
}

#[tokio::test]
async fn valid_tokens_are_vouched_for_without_reading_their_sessions() {
    // Arrange: sessions opened on another instance (or, on SQLite, before this one started),
    // so this instance has never seen them.
    let opener = spawn_service_app().await;
    let mut sessions = Vec::new();
    for _ in 0..20 {
        sessions.push(opener.new_user().await);
    }
    let app = spawn_on(opener.db.clone(), crate::service::with_test_keys).await;
    let reads_before = metric(&app, "sessiond_session_reads_total").await;

    // Act: introspect every token, and use each on bearer endpoints that need no session row.
    for session in &sessions {
        assert_active(introspect(&app, Some(INTROSPECT_KEY), &session.access_token).await).await;
        let ticket = app
            .post("/v1/ws-tickets")
            .bearer_auth(&session.access_token)
            .send()
            .await
            .unwrap();
        assert_eq!(ticket.status(), StatusCode::CREATED);
    }

    // Assert
    let reads_after = metric(&app, "sessiond_session_reads_total").await;
    assert_eq!(reads_after, reads_before, "validation read sessions");
    let fallbacks = metric(&app, "sessiond_validation_database_fallbacks_total").await;
    assert_eq!(fallbacks, 0.0);
}

#[tokio::test]
async fn a_session_ended_before_an_instance_started_is_known_ended_from_the_start() {
    // Arrange: a session ended while no second instance ran.
    let first = spawn_service_app().await;
    let ended = first.new_user().await;
    let live = first.new_user().await;
    assert_eq!(
        first.logout(&ended.access_token, None).await.status(),
        StatusCode::NO_CONTENT
    );

    // Act: a new instance on the same database.
    let second = spawn_on(first.db.clone(), crate::service::with_test_keys).await;
    let reads_before = metric(&second, "sessiond_session_reads_total").await;

    // Assert: it knows from the event log, without reading either session.
    assert_inactive(introspect(&second, Some(INTROSPECT_KEY), &ended.access_token).await).await;
    assert_active(introspect(&second, Some(INTROSPECT_KEY), &live.access_token).await).await;
    let remembered = metric(&second, "sessiond_recently_ended_sessions").await;
    assert!(remembered >= 1.0, "{remembered}");
    assert_eq!(
        metric(&second, "sessiond_session_reads_total").await,
        reads_before
    );
}

/// The session's `expires_at` as `GET /v1/me` shows it.
async fn session_expires_at(app: &TestApp, access_token: &str) -> i64 {
    let me: Value = app.me(access_token).await.json().await.unwrap();
    me["session"]["expires_at"].as_i64().expect("expires_at")
}

#[tokio::test]
async fn an_access_token_never_outlives_its_sessions_absolute_expiry() {
    // Arrange: guest sessions that last two minutes, access tokens fifteen.
    let app = crate::helpers::spawn_app_with(|s| {
        crate::service::with_test_keys(s);
        s.sessions.guest_ttl_secs = 120;
        s.tokens.access_ttl_secs = 900;
    })
    .await;

    // Act
    let guest = app.guest().await;

    // Assert: the token expires with the session, not fifteen minutes later.
    let session_ends = session_expires_at(&app, &guest.access_token).await;
    let claims = claims_of(&guest.access_token);
    assert_eq!(claims["exp"].as_i64(), Some(session_ends));
    assert_eq!(guest.body["expires_at"].as_i64(), Some(session_ends));
    assert!(guest.body["expires_in"].as_i64().unwrap() <= 120);
    app.advance_clock(121);
    assert_inactive(introspect(&app, Some(INTROSPECT_KEY), &guest.access_token).await).await;
}

#[tokio::test]
async fn an_access_token_never_outlives_its_sessions_idle_expiry() {
    // Arrange: sessions end after a minute without a refresh; access tokens last fifteen.
    let app = crate::helpers::spawn_app_with(|s| {
        crate::service::with_test_keys(s);
        s.sessions.idle_timeout_secs = 60;
        s.tokens.access_ttl_secs = 900;
    })
    .await;
    let session = app.new_user().await;
    assert!(session.body["expires_in"].as_i64().unwrap() <= 60);

    // Act: a refresh moves the idle expiry, and the new token follows it.
    app.advance_clock(30);
    let refreshed = app.refresh_ok(&session.refresh_token).await;

    // Assert
    let issued_at = claims_of(&refreshed.access_token)["iat"].as_i64().unwrap();
    let exp = claims_of(&refreshed.access_token)["exp"].as_i64().unwrap();
    assert_eq!(exp, issued_at + 60);
    app.advance_clock(61);
    assert_inactive(introspect(&app, Some(INTROSPECT_KEY), &refreshed.access_token).await).await;
}

#[tokio::test]
async fn sessions_written_in_bulk_are_live_guest_sessions() {
    // Arrange: more sessions than one statement writes (the bench's seeding).
    let app = crate::service::spawn_service_app().await;
    let tokens: Vec<_> = (0..1200)
        .map(|_| sessiond::credentials::tokens::opaque::generate())
        .collect();
    let seeded: Vec<sessiond::store::SeededSession> = tokens
        .iter()
        .map(|token| sessiond::store::SeededSession {
            user_id: uuid::Uuid::now_v7().to_string(),
            session_id: uuid::Uuid::now_v7().to_string(),
            refresh_token_id: uuid::Uuid::now_v7().to_string(),
            refresh_token_hash: sessiond::credentials::tokens::opaque::hash(token.expose_secret()),
        })
        .collect();
    let now = crate::helpers::system_now();

    // Act
    app.store
        .insert_guest_sessions(&seeded, now, now + 3600)
        .await
        .unwrap();

    // Assert: every one is live, and its refresh token works like a guest's.
    let live = app.store.count_live_sessions(now, 3600).await.unwrap();
    assert_eq!(live, 1200);
    let refreshed = app.refresh_ok(tokens[1199].expose_secret()).await;
    assert_eq!(refreshed.body["user"]["is_guest"], true);
    assert_eq!(refreshed.session_id, seeded[1199].session_id);
}
