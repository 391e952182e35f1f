//! Credential endpoints are rate-limited per client IP.

use reqwest::StatusCode;

use crate::helpers::{STRONG_PASSWORD, assert_error, spawn_app_with};

#[tokio::test]
async fn repeated_logins_from_one_address_get_429_with_retry_after() {
    let app = spawn_app_with(|s| {
        s.rate_limits.credentials_per_minute = 2;
        s.rate_limits.credentials_burst = 3;
    })
    .await;
    // The signup spends one of the three.
    app.new_user_with_email("ann@example.com").await;
    for _ in 0..2 {
        let attempt = app.login("ann@example.com", "a wrong passphrase").await;
        assert_error(attempt, StatusCode::UNAUTHORIZED, "invalid_credentials").await;
    }
    let limited = app.login("ann@example.com", STRONG_PASSWORD).await;
    let retry_after: u64 = limited.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=30).contains(&retry_after), "{retry_after}");
    assert_error(limited, StatusCode::TOO_MANY_REQUESTS, "rate_limited").await;
    // Token validation is never limited.
    let guest = app.guest().await;
    assert_eq!(app.me(&guest.access_token).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn behind_a_trusted_proxy_each_client_address_has_its_own_budget() {
    let app = spawn_app_with(|s| {
        s.server.trust_proxy = true;
        s.rate_limits.credentials_per_minute = 1;
        s.rate_limits.credentials_burst = 1;
    })
    .await;
    let login = |ip: &'static str| {
        app.post("/v1/login")
            .header("x-forwarded-for", ip)
            .json(&serde_json::json!({"email": "nobody@example.com", "password": STRONG_PASSWORD}))
            .send()
    };
    assert_eq!(
        login("198.51.100.1").await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        login("198.51.100.1").await.unwrap().status(),
        StatusCode::TOO_MANY_REQUESTS
    );
    assert_eq!(
        login("198.51.100.2").await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );
}
