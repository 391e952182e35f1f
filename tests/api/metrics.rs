//! `GET /metrics`: Prometheus text with request, login, refresh, session and hashing metrics,
//! labelled by route pattern, never by raw path.

use reqwest::StatusCode;
use reqwest::header::CONTENT_TYPE;

use crate::helpers::{STRONG_PASSWORD, TestApp, spawn_app};

async fn scrape(app: &TestApp) -> String {
    let response = app.get("/metrics").send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let content_type = response
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    assert!(content_type.starts_with("text/plain"), "{content_type}");
    response.text().await.unwrap()
}

/// The value of the first sample whose line starts with `prefix` (name and labels).
fn sample(body: &str, prefix: &str) -> f64 {
    body.lines()
        .filter(|line| !line.starts_with('#'))
        .find(|line| line.starts_with(prefix))
        .and_then(|line| line.rsplit(' ').next())
        .and_then(|value| value.parse().ok())
        .unwrap_or_else(|| panic!("no sample {prefix} in:\n{body}"))
}

#[tokio::test]
async fn metrics_are_served_as_prometheus_text() {
    // Arrange
    let app = spawn_app().await;

    // Act
    let body = scrape(&app).await;

    // Assert
    assert!(
        body.contains("# TYPE sessiond_live_sessions gauge"),
        "{body}"
    );
    assert!(
        body.contains("# TYPE sessiond_argon2_queue_depth gauge"),
        "{body}"
    );
    assert!(sample(&body, "sessiond_argon2_queue_depth") >= 0.0);
}

#[tokio::test]
async fn logins_refreshes_and_requests_are_counted() {
    // Arrange: a signup, a login, a failed login and a refresh.
    let app = spawn_app().await;
    app.new_user_with_email("ann@example.com").await;
    let session = app.login_ok("ann@example.com", STRONG_PASSWORD).await;
    let failed = app
        .login("ann@example.com", "not the right passphrase 9")
        .await;
    assert_eq!(failed.status(), StatusCode::UNAUTHORIZED);
    let refresh = app.refresh(&session.refresh_token).await;
    assert_eq!(refresh.status(), StatusCode::OK);

    // Act
    let body = scrape(&app).await;

    // Assert
    assert_eq!(sample(&body, "sessiond_logins_total{outcome=\"ok\"}"), 1.0);
    assert_eq!(
        sample(&body, "sessiond_logins_total{outcome=\"failed\"}"),
        1.0
    );
    assert!(sample(&body, "sessiond_refreshes_total") >= 1.0);
    let login_requests: Vec<&str> = body
        .lines()
        .filter(|l| {
            l.starts_with("sessiond_http_requests_total{") && l.contains("route=\"/v1/login\"")
        })
        .collect();
    assert!(
        login_requests
            .iter()
            .any(|l| l.contains("status=\"200\"") && l.contains("method=\"POST\"")),
        "{body}"
    );
    assert!(
        login_requests.iter().any(|l| l.contains("status=\"401\"")),
        "{body}"
    );
    assert!(
        body.lines().any(
            |l| l.starts_with("sessiond_http_request_duration_seconds_bucket{")
                && l.contains("route=\"/v1/token/refresh\"")
        ),
        "{body}"
    );
    assert!(sample(&body, "sessiond_live_sessions") >= 2.0);
    assert!(sample(&body, "sessiond_argon2_queue_depth") >= 0.0);
    // No secret ends up in a label.
    assert!(!body.contains(&session.refresh_token));
    assert!(!body.contains(&session.access_token));
}

#[tokio::test]
async fn routes_are_labelled_by_pattern_never_by_raw_path() {
    // Arrange
    let app = spawn_app().await;
    let session = app.new_user().await;
    let id = uuid::Uuid::now_v7().to_string();
    let other_id = uuid::Uuid::now_v7().to_string();
    let revoke = app.delete_session(&session.access_token, &id).await;
    assert_eq!(revoke.status(), StatusCode::NOT_FOUND);
    let unknown = app
        .get(&format!("/v1/no-such-route/{other_id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);

    // Act
    let body = scrape(&app).await;

    // Assert
    assert!(!body.contains(&id), "{body}");
    assert!(!body.contains(&other_id), "{body}");
    assert!(!body.contains("no-such-route"), "{body}");
    assert!(
        body.lines()
            .any(|l| l.starts_with("sessiond_http_requests_total{")
                && l.contains("route=\"/v1/sessions/{id}\"")
                && l.contains("status=\"404\"")),
        "{body}"
    );
}
