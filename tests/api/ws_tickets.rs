//! One-time WebSocket tickets: issued to a bearer (`POST /v1/ws-tickets`), redeemed once by a
//! service holding an `introspect` key (`POST /v1/ws-tickets/redeem`).

use reqwest::StatusCode;
use reqwest::header::CACHE_CONTROL;
use secrecy::ExposeSecret;
use serde_json::{Value, json};

use crate::helpers::assert_error;
use crate::service::{
    ADMIN_KEY, INTROSPECT_KEY, assert_active, assert_inactive, issue_ticket, redeem,
    spawn_service_app,
};

const KEY: Option<&str> = Some(INTROSPECT_KEY);

#[tokio::test]
async fn a_bearer_gets_a_short_lived_uncacheable_ticket() {
    // Arrange
    let app = spawn_service_app().await;
    let session = app.new_user().await;

    // Act
    let response = app
        .post("/v1/ws-tickets")
        .bearer_auth(&session.access_token)
        .send()
        .await
        .unwrap();

    // Assert
    assert_eq!(response.status(), StatusCode::CREATED);
    assert_eq!(
        response
            .headers()
            .get(CACHE_CONTROL)
            .and_then(|v| v.to_str().ok()),
        Some("no-store")
    );
    let body: Value = response.json().await.unwrap();
    let ticket = body["ticket"].as_str().expect("a ticket");
    assert_eq!(ticket.len(), 43, "{body}");
    assert!(
        ticket
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    );
    assert_eq!(body["expires_in"], 30);
    // Two tickets are never the same.
    assert_ne!(issue_ticket(&app, &session.access_token).await, ticket);
}

#[tokio::test]
async fn a_ticket_needs_a_live_access_token() {
    // Arrange
    let app = spawn_service_app().await;
    let session = app.new_user().await;
    app.logout(&session.access_token, None).await;

    // Act
    let without = app.post("/v1/ws-tickets").send().await.unwrap();
    let service_key = app
        .post("/v1/ws-tickets")
        .bearer_auth(INTROSPECT_KEY)
        .send()
        .await
        .unwrap();
    let logged_out = app
        .post("/v1/ws-tickets")
        .bearer_auth(&session.access_token)
        .send()
        .await
        .unwrap();

    // Assert
    for response in [without, service_key, logged_out] {
        assert_error(response, StatusCode::UNAUTHORIZED, "invalid_token").await;
    }
}

#[tokio::test]
async fn redeeming_a_ticket_names_its_user_and_session() {
    // Arrange
    let app = spawn_service_app().await;
    let session = app.new_user_with_email("ann@example.com").await;
    let ticket = issue_ticket(&app, &session.access_token).await;

    // Act
    let response = redeem(&app, KEY, &ticket).await;

    // Assert
    let body = assert_active(response).await;
    assert_eq!(body["sub"], session.user_id.as_str());
    assert_eq!(body["sid"], session.session_id.as_str());
    assert_eq!(body["is_guest"], false);
    assert_eq!(body["email"], "ann@example.com");
    // What a socket server needs to ask for a recent or two-factor authentication.
    assert_eq!(body["auth_time"], app.core.clock.now());
    assert_eq!(body["amr"], serde_json::json!(["pwd"]));
    assert_eq!(body["acr"], "1");
}

#[tokio::test]
async fn a_guest_ticket_is_marked_as_guest() {
    // Arrange
    let app = spawn_service_app().await;
    let guest = app.guest().await;
    let ticket = issue_ticket(&app, &guest.access_token).await;

    // Act
    let response = redeem(&app, KEY, &ticket).await;

    // Assert
    let body = assert_active(response).await;
    assert_eq!(body["sub"], guest.user_id.as_str());
    assert_eq!(body["is_guest"], true);
    assert!(body.get("email").is_none_or(Value::is_null), "{body}");
}

#[tokio::test]
async fn a_ticket_is_redeemed_only_once() {
    // Arrange
    let app = spawn_service_app().await;
    let session = app.new_user().await;
    let ticket = issue_ticket(&app, &session.access_token).await;
    assert_active(redeem(&app, KEY, &ticket).await).await;

    // Act
    let second = redeem(&app, KEY, &ticket).await;

    // Assert
    assert_inactive(second).await;
}

#[tokio::test]
async fn of_two_concurrent_redeems_exactly_one_succeeds() {
    // Arrange
    let app = spawn_service_app().await;
    let session = app.new_user().await;
    let ticket = issue_ticket(&app, &session.access_token).await;

    // Act
    let (first, second) = tokio::join!(redeem(&app, KEY, &ticket), redeem(&app, KEY, &ticket));

    // Assert
    assert_eq!(first.status(), StatusCode::OK);
    assert_eq!(second.status(), StatusCode::OK);
    let first: Value = first.json().await.unwrap();
    let second: Value = second.json().await.unwrap();
    let active = [&first, &second]
        .iter()
        .filter(|body| body["active"] == true)
        .count();
    assert_eq!(active, 1, "{first} / {second}");
    let loser = if first["active"] == true {
        &second
    } else {
        &first
    };
    assert_eq!(loser, &json!({ "active": false }));
}

#[tokio::test]
async fn a_ticket_of_a_logged_out_session_is_inactive() {
    // Arrange
    let app = spawn_service_app().await;
    let session = app.new_user().await;
    let ticket = issue_ticket(&app, &session.access_token).await;
    let logout = app.logout(&session.access_token, None).await;
    assert_eq!(logout.status(), StatusCode::NO_CONTENT);

    // Act
    let response = redeem(&app, KEY, &ticket).await;

    // Assert
    assert_inactive(response).await;
}

#[tokio::test]
async fn unknown_and_garbage_tickets_are_inactive() {
    // Arrange
    let app = spawn_service_app().await;
    let session = app.new_user().await;
    let unknown = sessiond::credentials::tokens::opaque::generate();
    let garbage = [
        unknown.expose_secret(),
        "x",
        "",
        &"!".repeat(43),
        &"A".repeat(4000),
        // A live refresh token or access token is not a ticket.
        &session.refresh_token,
        &session.access_token,
    ];

    for ticket in garbage {
        // Act
        let response = redeem(&app, KEY, ticket).await;

        // Assert
        assert_inactive(response).await;
    }
}

#[tokio::test]
async fn an_expired_ticket_is_inactive() {
    // Arrange: a ticket that lived from 60 s ago until 30 s ago.
    let app = spawn_service_app().await;
    let session = app.new_user().await;
    let raw = sessiond::credentials::tokens::opaque::generate();
    let now = crate::helpers::system_now();
    app.store
        .insert_ws_ticket(
            &uuid::Uuid::now_v7().to_string(),
            &sessiond::credentials::tokens::opaque::hash(raw.expose_secret()),
            &session.session_id,
            now - 60,
            now - 30,
        )
        .await
        .unwrap();

    // Act
    let response = redeem(&app, KEY, raw.expose_secret()).await;

    // Assert
    assert_inactive(response).await;
}

#[tokio::test]
async fn redeeming_without_a_valid_service_key_is_refused() {
    // Arrange
    let app = spawn_service_app().await;
    let session = app.new_user().await;
    let ticket = issue_ticket(&app, &session.access_token).await;

    // Act
    let missing = redeem(&app, None, &ticket).await;
    let user_token = redeem(&app, Some(&session.access_token), &ticket).await;
    let admin_only = redeem(&app, Some(ADMIN_KEY), &ticket).await;

    // Assert
    assert_error(missing, StatusCode::UNAUTHORIZED, "invalid_client").await;
    assert_error(user_token, StatusCode::UNAUTHORIZED, "invalid_client").await;
    assert_error(admin_only, StatusCode::FORBIDDEN, "forbidden").await;
    // None of those spent the ticket.
    assert_active(redeem(&app, KEY, &ticket).await).await;
}

#[tokio::test]
async fn a_missing_ticket_field_is_invalid_request() {
    // Arrange
    let app = spawn_service_app().await;

    // Act
    let empty = app
        .post("/v1/ws-tickets/redeem")
        .bearer_auth(INTROSPECT_KEY)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    let mistyped = app
        .post("/v1/ws-tickets/redeem")
        .bearer_auth(INTROSPECT_KEY)
        .json(&json!({ "ticket": 7 }))
        .send()
        .await
        .unwrap();

    // Assert
    assert_error(empty, StatusCode::BAD_REQUEST, "invalid_request").await;
    assert_error(mistyped, StatusCode::BAD_REQUEST, "invalid_request").await;
}
