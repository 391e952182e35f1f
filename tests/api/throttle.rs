//! The per-account login throttle: one budget in the database for every instance, the same
//! answer for unknown emails, and the owner never locked out from an address that has not
//! failed.

use reqwest::{Method, Response, StatusCode};
use serde_json::Value;
use sessiond::config::Settings;

use crate::helpers::{STRONG_PASSWORD, assert_error, spawn_app_with, spawn_on};
use crate::service::{ADMIN_KEY, admin, with_test_keys};

const WRONG: &str = "not the password at all";

/// The defaults, behind one trusted proxy so that tests can speak from many addresses.
fn throttled(s: &mut Settings) {
    with_test_keys(s);
    s.server.trust_proxy = true;
    s.throttle = Settings::defaults().throttle;
}

/// Status, Retry-After and body of an answer.
async fn answer(response: Response) -> (StatusCode, Option<String>, Value) {
    let status = response.status();
    let retry_after = response
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_string());
    (status, retry_after, response.json().await.unwrap())
}

#[tokio::test]
async fn five_failures_block_the_address_and_unknown_emails_get_the_same_answers() {
    // Arrange
    let app = spawn_app_with(throttled).await;
    app.new_user_with_email("ann@example.com").await;

    // Act: the same sequence against a real account and an email nobody has.
    let mut transcripts = Vec::new();
    for email in ["ann@example.com", "nobody@example.com"] {
        let mut transcript = Vec::new();
        for _ in 0..5 {
            transcript.push(answer(app.login_from("198.51.100.1", email, WRONG).await).await);
        }
        // Even the right password is not checked while the address is blocked.
        let right = app.login_from("198.51.100.1", email, STRONG_PASSWORD).await;
        transcript.push(answer(right).await);
        transcripts.push(transcript);
    }

    // Assert
    let known = &transcripts[0];
    assert!(
        known[..5]
            .iter()
            .all(|(s, _, _)| *s == StatusCode::UNAUTHORIZED),
        "{known:?}"
    );
    let (status, retry_after, body) = &known[5];
    assert_eq!(*status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(body["error"], "rate_limited");
    let wait: i64 = retry_after.as_deref().unwrap().parse().unwrap();
    assert!((1..=30).contains(&wait), "{wait}");
    let strip = |t: &Vec<(StatusCode, Option<String>, Value)>| -> Vec<(StatusCode, Value)> {
        t.iter().map(|(s, _, b)| (*s, b.clone())).collect()
    };
    assert_eq!(
        strip(&transcripts[0]),
        strip(&transcripts[1]),
        "unknown emails look the same"
    );

    // The owner, from an address that has not failed, signs in.
    let owner = app
        .login_from("203.0.113.50", "ann@example.com", STRONG_PASSWORD)
        .await;
    assert_eq!(owner.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_success_clears_the_address() {
    let app = spawn_app_with(throttled).await;
    app.new_user_with_email("ann@example.com").await;
    let ip = "198.51.100.2";
    for _ in 0..4 {
        let r = app.login_from(ip, "ann@example.com", WRONG).await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    }
    let ok = app.login_from(ip, "ann@example.com", STRONG_PASSWORD).await;
    assert_eq!(ok.status(), StatusCode::OK);
    // The count restarted: four more failures are still answered.
    for _ in 0..4 {
        let r = app.login_from(ip, "ann@example.com", WRONG).await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    }
    // The fifth failure since the success blocks the address.
    let fifth = app.login_from(ip, "ann@example.com", WRONG).await;
    assert_eq!(fifth.status(), StatusCode::UNAUTHORIZED);
    let blocked = app.login_from(ip, "ann@example.com", WRONG).await;
    assert_eq!(blocked.status(), StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test]
async fn the_cli_clears_an_accounts_throttle() {
    let app = spawn_app_with(throttled).await;
    app.new_user_with_email("ann@example.com").await;
    let ip = "198.51.100.5";
    for _ in 0..5 {
        app.login_from(ip, "ann@example.com", WRONG).await;
    }
    let blocked = app.login_from(ip, "ann@example.com", STRONG_PASSWORD).await;
    assert_eq!(blocked.status(), StatusCode::TOO_MANY_REQUESTS);

    let output = crate::binary::sessiond()
        .env("DATABASE_URL", &app.db.url)
        .args(["throttle", "clear", " Ann@Example.com "])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{output:?}");
    assert!(
        stdout.contains("cleared 2 throttle entries for ann@example.com"),
        "{stdout}"
    );
    let again = app.login_from(ip, "ann@example.com", STRONG_PASSWORD).await;
    assert_eq!(again.status(), StatusCode::OK);
}

#[tokio::test]
async fn two_instances_share_one_budget() {
    let a = spawn_app_with(throttled).await;
    let b = spawn_on(a.db.clone(), throttled).await;
    a.new_user_with_email("ann@example.com").await;
    let ip = "198.51.100.3";
    for app in [&a, &b, &a, &b, &a] {
        let r = app.login_from(ip, "ann@example.com", WRONG).await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    }
    for app in [&a, &b] {
        let r = app.login_from(ip, "ann@example.com", STRONG_PASSWORD).await;
        assert_error(r, StatusCode::TOO_MANY_REQUESTS, "rate_limited").await;
    }
}

#[tokio::test]
async fn past_the_account_ceiling_failed_addresses_wait_and_fresh_ones_still_get_in() {
    // Arrange: a botnet, each address failing twice (under the per-address threshold).
    let app = spawn_app_with(|s| {
        throttled(s);
        s.throttle.account_failures = 10;
        s.throttle.account_delay_ms = 50;
    })
    .await;
    app.new_user_with_email("ann@example.com").await;
    for bot in 0..5 {
        let ip = format!("192.0.2.{bot}");
        for _ in 0..2 {
            let r = app.login_from(&ip, "ann@example.com", WRONG).await;
            assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
        }
    }

    // Act + Assert: an address that failed is refused even with the right password...
    let bot = app
        .login_from("192.0.2.0", "ann@example.com", STRONG_PASSWORD)
        .await;
    assert_error(bot, StatusCode::TOO_MANY_REQUESTS, "rate_limited").await;
    // ...while the owner's clean address is only slowed, and gets in.
    let owner = app
        .login_from("203.0.113.9", "ann@example.com", STRONG_PASSWORD)
        .await;
    assert_eq!(owner.status(), StatusCode::OK);
}

#[tokio::test]
async fn an_admin_clears_the_throttle_and_it_is_audited_and_counted() {
    let app = spawn_app_with(throttled).await;
    let ann = app.new_user_with_email("ann@example.com").await;
    let ip = "198.51.100.4";
    for _ in 0..5 {
        app.login_from(ip, "ann@example.com", WRONG).await;
    }
    let blocked = app.login_from(ip, "ann@example.com", STRONG_PASSWORD).await;
    assert_eq!(blocked.status(), StatusCode::TOO_MANY_REQUESTS);

    let path = format!("/v1/admin/users/{}/throttle", ann.user_id);
    let cleared = admin(&app, Method::DELETE, &path, Some(ADMIN_KEY))
        .send()
        .await
        .unwrap();
    assert_eq!(cleared.status(), StatusCode::NO_CONTENT);
    let again = app.login_from(ip, "ann@example.com", STRONG_PASSWORD).await;
    assert_eq!(again.status(), StatusCode::OK);

    let unknown = format!("/v1/admin/users/{}/throttle", uuid::Uuid::now_v7());
    let missing = admin(&app, Method::DELETE, &unknown, Some(ADMIN_KEY))
        .send()
        .await
        .unwrap();
    assert_error(missing, StatusCode::NOT_FOUND, "not_found").await;

    let types = crate::service::audit_types(&app, &ann.user_id).await;
    assert!(types.iter().any(|t| t == "login_throttled"), "{types:?}");
    assert!(
        types.iter().any(|t| t == "admin_cleared_throttle"),
        "{types:?}"
    );
    let metrics = app.metrics_text().await;
    let throttled_total = metrics
        .lines()
        .find(|l| l.starts_with("sessiond_login_throttled_total "))
        .expect("the metric");
    assert_eq!(throttled_total, "sessiond_login_throttled_total 1");
}

#[tokio::test]
async fn twenty_wrong_logins_at_once_get_at_most_five_password_checks() {
    // Arrange: a queue long enough that every attempt reaches the throttle.
    let app = spawn_app_with(|s| {
        throttled(s);
        s.passwords.max_queued_hashes = 64;
    })
    .await;
    let ann = app.new_user_with_email("burst@example.com").await;

    // Act: twenty guesses sent together, from one address.
    let guesses = (0..20).map(|_| app.login_from("198.51.100.7", "burst@example.com", WRONG));
    let statuses: Vec<StatusCode> = futures::future::join_all(guesses)
        .await
        .into_iter()
        .map(|r| r.status())
        .collect();

    // Assert: five were checked (401), the rest refused before any check (429).
    let checked = statuses
        .iter()
        .filter(|s| **s == StatusCode::UNAUTHORIZED)
        .count();
    let refused = statuses
        .iter()
        .filter(|s| **s == StatusCode::TOO_MANY_REQUESTS)
        .count();
    assert_eq!((checked, refused), (5, 15), "{statuses:?}");
    let audited = crate::service::audit_types(&app, &ann.user_id).await;
    let failures = audited.iter().filter(|t| *t == "login_failed").count();
    assert_eq!(failures, 5, "{audited:?}");
}

#[tokio::test]
async fn a_wrong_current_password_is_throttled_and_audited_like_a_wrong_login() {
    // Arrange: a stolen access token, used to guess the password.
    let app = spawn_app_with(throttled).await;
    let ann = app.new_user_with_email("guessed@example.com").await;
    let guess = serde_json::json!({
        "current_password": WRONG,
        "new_password": "another correct horse battery",
    });

    // Act
    let mut statuses = Vec::new();
    for _ in 0..6 {
        let response = app.change_password(&ann.access_token, &guess).await;
        statuses.push(response.status());
    }

    // Assert: five checks, then 429 — the same budget as the login form's.
    assert_eq!(statuses[..5], [StatusCode::UNAUTHORIZED; 5], "{statuses:?}");
    assert_eq!(statuses[5], StatusCode::TOO_MANY_REQUESTS, "{statuses:?}");
    let login = app.login("guessed@example.com", STRONG_PASSWORD).await;
    assert_eq!(login.status(), StatusCode::TOO_MANY_REQUESTS);
    let audited = crate::service::audit_types(&app, &ann.user_id).await;
    let failures = audited
        .iter()
        .filter(|t| *t == "credential_check_failed")
        .count();
    assert_eq!(failures, 5, "{audited:?}");
    assert!(
        audited.iter().any(|t| t == "login_throttled"),
        "{audited:?}"
    );
    // The right current password from another address still works: nobody locked the owner out.
    let from_elsewhere = app
        .post("/v1/password")
        .header("x-forwarded-for", "203.0.113.9")
        .bearer_auth(&ann.access_token)
        .json(&serde_json::json!({
            "current_password": STRONG_PASSWORD,
            "new_password": "another correct horse battery",
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(from_elsewhere.status(), StatusCode::NO_CONTENT);
}

#[tokio::test]
async fn a_full_hashing_queue_turns_logins_away_before_any_database_work() {
    // Arrange: a queue of one place, taken; and a throttle table that any database work of a
    // login would trip over (a missing table is a 500, never a 503).
    let app = spawn_app_with(|s| s.passwords.max_queued_hashes = 1).await;
    app.new_user_with_email("queue@example.com").await;
    let held = app.core.hasher.reserve().expect("the one place is free");
    let mut conn = crate::helpers::raw_connection(&app.db.url).await;
    sqlx::query("alter table login_throttle rename to login_throttle_away")
        .execute(&mut conn)
        .await
        .unwrap();

    // Act: a storm of logins.
    let storm = (0..10).map(|_| app.login("queue@example.com", STRONG_PASSWORD));
    let answers = futures::future::join_all(storm).await;

    // Assert: every one 503 with Retry-After, turned away before touching the database.
    for response in answers {
        assert!(response.headers().contains_key("retry-after"));
        assert_error(response, StatusCode::SERVICE_UNAVAILABLE, "unavailable").await;
    }
    sqlx::query("alter table login_throttle_away rename to login_throttle")
        .execute(&mut conn)
        .await
        .unwrap();
    drop(held);
    let login = app.login("queue@example.com", STRONG_PASSWORD).await;
    assert_eq!(login.status(), StatusCode::OK);
}
