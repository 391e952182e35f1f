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
    let login = |ip: &'static str| app.login_from(ip, "nobody@example.com", STRONG_PASSWORD);
    assert_eq!(
        login("198.51.100.1").await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        login("198.51.100.1").await.status(),
        StatusCode::TOO_MANY_REQUESTS
    );
    assert_eq!(
        login("198.51.100.2").await.status(),
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn forged_forwarded_lines_do_not_buy_fresh_budgets() {
    // Arrange: one proxy in front; the client writes its own X-Forwarded-For line every time,
    // and the proxy appends the address it really saw as another line.
    let app = spawn_app_with(|s| {
        s.server.trust_proxy = true;
        s.rate_limits.credentials_per_minute = 2;
        s.rate_limits.credentials_burst = 3;
    })
    .await;
    let mut statuses = Vec::new();
    for i in 0..15 {
        let response = app
            .post("/v1/login")
            .header("x-forwarded-for", format!("6.6.6.{i}"))
            .header("x-forwarded-for", "198.51.100.1")
            .json(
                &serde_json::json!({"email": "ann@example.com", "password": "a wrong passphrase"}),
            )
            .send()
            .await
            .unwrap();
        statuses.push(response.status());
    }
    // Assert: the budget of 198.51.100.1 ran out after three attempts.
    assert!(
        statuses[..3].iter().all(|s| *s == StatusCode::UNAUTHORIZED),
        "{statuses:?}"
    );
    assert!(
        statuses[3..]
            .iter()
            .all(|s| *s == StatusCode::TOO_MANY_REQUESTS),
        "{statuses:?}"
    );
}

#[tokio::test]
async fn ipv6_clients_share_a_budget_per_64() {
    let app = spawn_app_with(|s| {
        s.server.trust_proxy = true;
        s.rate_limits.credentials_per_minute = 1;
        s.rate_limits.credentials_burst = 1;
    })
    .await;
    let login = |ip: &'static str| app.login_from(ip, "nobody@example.com", STRONG_PASSWORD);
    let first = login("2001:db8:7:1::1").await.status();
    assert_eq!(first, StatusCode::UNAUTHORIZED);
    // Another address of the same /64 is the same subscriber.
    let same_64 = login("2001:db8:7:1:ffff::2").await.status();
    assert_eq!(same_64, StatusCode::TOO_MANY_REQUESTS);
    let other_64 = login("2001:db8:7:2::1").await.status();
    assert_eq!(other_64, StatusCode::UNAUTHORIZED);
}
