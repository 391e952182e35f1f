//! Bounded resources and safe defaults: a shared guest budget, abandoned guests and old audit
//! events purged, a bounded password-hashing queue, a fixed set of metric labels, a guarded
//! `/metrics`, production start-up checks, and signing keys sealed at rest.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use secrecy::SecretString;

use crate::binary::sessiond;
use crate::helpers::{STRONG_PASSWORD, TestApp, assert_error, spawn_app_with, spawn_on};

async fn guest_from(app: &TestApp, ip: &str) -> reqwest::Response {
    app.post("/v1/guest")
        .header("x-forwarded-for", ip)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn guest_creation_has_a_per_address_budget_every_instance_shares() {
    let limited = |s: &mut sessiond::config::Settings| {
        s.server.trust_proxy = true;
        s.rate_limits.guests_per_minute = 4;
    };
    let a = spawn_app_with(limited).await;
    let b = spawn_on(a.db.clone(), limited).await;
    let mut statuses = Vec::new();
    for app in [&a, &b, &a, &b, &a, &b] {
        statuses.push(guest_from(app, "198.51.100.7").await.status());
    }
    // A minute boundary may fall inside the loop and refill once; never more than 8 get in.
    let created = statuses
        .iter()
        .filter(|s| **s == StatusCode::CREATED)
        .count();
    assert!((4..=5).contains(&created), "{statuses:?}");
    let refused = guest_from(&a, "198.51.100.7").await;
    if refused.status() == StatusCode::TOO_MANY_REQUESTS {
        let wait: u64 = refused.headers()["retry-after"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!((1..=60).contains(&wait));
        assert_error(refused, StatusCode::TOO_MANY_REQUESTS, "rate_limited").await;
    }
    // Another address has its own budget.
    assert_eq!(
        guest_from(&b, "198.51.100.8").await.status(),
        StatusCode::CREATED
    );
}

#[tokio::test]
async fn an_address_over_its_guest_budget_is_turned_away_without_a_database_write() {
    // Arrange
    let app = spawn_app_with(|s| {
        s.server.trust_proxy = true;
        s.rate_limits.guests_per_minute = 2;
    })
    .await;

    // Act: eight guests asked for from one address.
    let mut statuses = Vec::new();
    for _ in 0..8 {
        statuses.push(guest_from(&app, "198.51.100.9").await.status());
    }

    // Assert: past the budget, the count in the database stops growing: the first refusal
    // learns the address is over, the rest are refused from memory (per minute window).
    assert!(
        statuses[2..].contains(&StatusCode::TOO_MANY_REQUESTS),
        "{statuses:?}"
    );
    let mut conn = crate::helpers::raw_connection(&app.db.url).await;
    let windows: Vec<(i64, i64)> = sqlx::query_as(
        "select window_start, hits from rate_windows where key = 'guest:198.51.100.9'",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    assert!(!windows.is_empty());
    for (window, hits) in &windows {
        assert!(*hits <= 3, "window {window}: {hits} writes; {statuses:?}");
    }
}

#[tokio::test]
async fn abandoned_guests_and_old_audit_events_are_purged() {
    // Arrange: every guest counts as old enough, every audit event as past retention.
    let app = spawn_app_with(|s| {
        s.sessions.abandoned_guest_secs = -60;
        s.audit.retention_secs = -60;
    })
    .await;
    let gone = app.guest().await;
    app.logout(&gone.access_token, None).await;
    let kept = app.guest().await;
    let member = app.new_user().await;
    app.logout(&member.access_token, None).await;

    // Act (the background purge, which runs the same code, may get there first).
    sessiond::services::maintenance::purge_abandoned_guests(&app.services.upkeep).await;
    sessiond::services::maintenance::purge_old_audit_events(&app.services.upkeep).await;

    // Assert: only the guest without a live session went; a permanent user never does.
    let store = &app.store;
    assert!(store.find_user(&gone.user_id).await.unwrap().is_none());
    assert!(store.find_user(&kept.user_id).await.unwrap().is_some());
    assert!(store.find_user(&member.user_id).await.unwrap().is_some());
    assert_eq!(app.me(&kept.access_token).await.status(), StatusCode::OK);
    let left = store.audit_events(None, 100).await.unwrap();
    assert!(left.is_empty(), "{}", left.len());
}

#[tokio::test]
async fn a_full_hashing_queue_answers_503_at_once_and_never_500() {
    let app = std::sync::Arc::new(
        spawn_app_with(|s| {
            crate::helpers::production_hashing(s);
            s.passwords.max_concurrent_hashes = 1;
            s.passwords.max_queued_hashes = 2;
        })
        .await,
    );
    app.new_user_with_email("ann@example.com").await;
    let logins: Vec<_> = (0..12)
        .map(|_| {
            let app = app.clone();
            tokio::spawn(async move { app.login("ann@example.com", STRONG_PASSWORD).await })
        })
        .collect();
    let mut busy = 0;
    for login in logins {
        let response = login.await.unwrap();
        match response.status() {
            StatusCode::OK => {}
            StatusCode::SERVICE_UNAVAILABLE => {
                assert!(response.headers().contains_key("retry-after"));
                assert_error(response, StatusCode::SERVICE_UNAVAILABLE, "unavailable").await;
                busy += 1;
            }
            other => panic!("unexpected {other}"),
        }
    }
    assert!(busy > 0, "a queue of two cannot take twelve at once");
}

#[tokio::test]
async fn queued_hashes_of_clients_that_left_are_skipped() {
    let app = spawn_app_with(|s| {
        crate::helpers::production_hashing(s);
        s.passwords.max_concurrent_hashes = 1;
    })
    .await;
    app.new_user_with_email("ann@example.com").await;
    let impatient = reqwest::Client::builder()
        .timeout(Duration::from_millis(100))
        .build()
        .unwrap();
    let attempts = (0..20).map(|_| {
        impatient
            .post(app.url("/v1/login"))
            .json(&serde_json::json!({"email": "ann@example.com", "password": STRONG_PASSWORD}))
            .send()
    });
    futures::future::join_all(attempts).await;
    // Give the worker time to reach (and skip) the abandoned jobs.
    let mut skipped = 0;
    for _ in 0..50 {
        skipped = app.core.hasher.abandoned();
        if skipped > 0 && app.core.hasher.queue_depth() == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(skipped > 0, "no abandoned job was skipped");
    let metrics = app.metrics_text().await;
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("sessiond_argon2_abandoned_total ") && !l.ends_with(" 0")),
        "{metrics}"
    );
}

#[tokio::test]
async fn invented_methods_do_not_grow_the_metrics() {
    let app = spawn_app_with(|_| {}).await;
    let before = app.metrics_text().await;
    for i in 0..300 {
        let method = Method::from_bytes(format!("BREW{i}").as_bytes()).unwrap();
        app.client
            .request(method, app.url("/v1/me"))
            .send()
            .await
            .unwrap();
    }
    let after = app.metrics_text().await;
    assert!(!after.contains("BREW"), "invented methods became labels");
    assert!(
        after.contains("method=\"other\""),
        "they are counted as other"
    );
    assert!(
        after.len() < before.len() + 4096,
        "{} -> {}",
        before.len(),
        after.len()
    );
}

#[tokio::test]
async fn metrics_can_require_a_bearer_token() {
    let app = spawn_app_with(|s| {
        s.metrics.bearer_token = Some(SecretString::from("m3trics-scraper-token".to_string()));
    })
    .await;
    let anonymous = app.get("/metrics").send().await.unwrap();
    assert_error(anonymous, StatusCode::UNAUTHORIZED, "invalid_client").await;
    let wrong = app
        .get("/metrics")
        .bearer_auth("guess")
        .send()
        .await
        .unwrap();
    assert_error(wrong, StatusCode::UNAUTHORIZED, "invalid_client").await;
    let scraper = app
        .get("/metrics")
        .bearer_auth("m3trics-scraper-token")
        .send()
        .await
        .unwrap();
    assert_eq!(scraper.status(), StatusCode::OK);
    assert!(scraper.text().await.unwrap().contains("sessiond_"));
}

const KEK: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
const KEK_TEXT_PIECE: &str = "AAECAwQFBgcICQoL";
const MAIL_URL: &str = "smtps://mailer:mail-password-9f8e@smtp.acme.example";

/// The binary as production runs it, with a configuration that is fine except where `env`
/// says otherwise.
fn production(env: &[(&str, &str)]) -> std::process::Output {
    let mut command = sessiond();
    command
        .env("SESSIOND_ENV", "production")
        .env(
            "DATABASE_URL",
            "sqlite:///nonexistent-dir-never-created/x.db",
        )
        .env("SESSIOND__SERVER__PUBLIC_URL", "https://auth.example.com")
        .env("SESSIOND__KEYS__ENCRYPTION_KEY", KEK)
        .env(
            "SESSIOND__METRICS__BEARER_TOKEN",
            "a-scraper-token-of-some-length",
        )
        .env("SESSIOND__MAIL__URL", MAIL_URL)
        .env("SESSIOND__MAIL__FROM", "Acme <no-reply@acme.example>")
        .env(
            "SESSIOND__ACCOUNTS__LINK_URL",
            "https://app.acme.example/auth",
        );
    for (k, v) in env {
        command.env(k, v);
    }
    command.args(["config", "check"]).output().unwrap()
}

#[test]
fn production_refuses_unsafe_settings_with_reasons_and_masks_secrets() {
    // A sound production configuration passes, and prints no secret.
    let ok = production(&[]);
    let stdout = String::from_utf8_lossy(&ok.stdout);
    assert!(ok.status.success(), "{ok:?}");
    assert!(stdout.contains("configuration ok"));
    assert!(
        !stdout.contains(KEK_TEXT_PIECE),
        "the encryption key was printed"
    );
    assert!(
        !stdout.contains("mail-password-9f8e"),
        "the SMTP password was printed"
    );

    for (env, setting) in [
        (
            ("SESSIOND__SERVER__PUBLIC_URL", "http://auth.example.com"),
            "server.public_url",
        ),
        (
            ("SESSIOND__SERVER__PUBLIC_URL", "https://localhost:8080"),
            "server.public_url",
        ),
        (
            ("SESSIOND__KEYS__ENCRYPTION_KEY", ""),
            "keys.encryption_key",
        ),
        (
            ("SESSIOND__METRICS__BEARER_TOKEN", ""),
            "metrics.bearer_token",
        ),
        (("SESSIOND__MAIL__URL", "log:"), "mail.url"),
        (
            ("SESSIOND__MAIL__URL", "http://smtp.acme.example"),
            "mail.url",
        ),
        (
            (
                "SESSIOND__ACCOUNTS__LINK_URL",
                "http://app.acme.example/auth",
            ),
            "accounts.link_url",
        ),
        (
            ("SESSIOND__MAIL__FROM", "sessiond <no-reply@localhost>"),
            "mail.from",
        ),
    ] {
        let refused = production(&[env]);
        let stderr = String::from_utf8_lossy(&refused.stderr);
        assert_eq!(refused.status.code(), Some(1), "{env:?}: {refused:?}");
        assert!(stderr.contains(setting), "{env:?}: {stderr}");
    }
    // Plain keys only when the operator says so.
    let allowed = production(&[
        ("SESSIOND__KEYS__ENCRYPTION_KEY", ""),
        ("SESSIOND__KEYS__ALLOW_PLAINTEXT", "true"),
    ]);
    assert!(allowed.status.success(), "{allowed:?}");
    // An open /metrics only when the operator says so.
    let public = production(&[
        ("SESSIOND__METRICS__BEARER_TOKEN", ""),
        ("SESSIOND__METRICS__PUBLIC", "true"),
    ]);
    assert!(public.status.success(), "{public:?}");
}

#[test]
fn production_serve_stops_with_one_line_naming_the_setting() {
    let output = sessiond()
        .env("SESSIOND_ENV", "production")
        .env(
            "DATABASE_URL",
            "sqlite:///nonexistent-dir-never-created/x.db",
        )
        .env("SESSIOND__SERVER__PUBLIC_URL", "http://localhost:8080")
        .env("SESSIOND__KEYS__ALLOW_PLAINTEXT", "true")
        .env("SESSIOND__METRICS__PUBLIC", "true")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{stderr}");
    assert!(lines[0].contains("server.public_url"), "{stderr}");
}

#[test]
fn short_service_key_secrets_and_plain_http_jwks_are_refused() {
    let dir = std::env::temp_dir().join(format!("sessiond-conf-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("production.toml"),
        r#"
[[service_keys]]
name = "api"
secret = "short"
scopes = ["introspect"]

[[bridge.providers]]
name = "auth0"
issuer = "https://tenant.auth0.com/"
audience = ["api"]
algorithms = ["RS256"]
jwks_url = "http://tenant.auth0.com/.well-known/jwks.json"
"#,
    )
    .unwrap();
    let output = sessiond()
        .env("SESSIOND_CONFIG_DIR", &dir)
        .env("SESSIOND_ENV", "production")
        .env(
            "DATABASE_URL",
            "sqlite:///nonexistent-dir-never-created/x.db",
        )
        .env("SESSIOND__SERVER__PUBLIC_URL", "https://auth.example.com")
        .env("SESSIOND__KEYS__ENCRYPTION_KEY", KEK)
        .env("SESSIOND__METRICS__PUBLIC", "true")
        .args(["config", "check"])
        .output()
        .unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    assert!(stderr.contains("service key api"), "{stderr}");
    assert!(stderr.contains("bridge provider auth0"), "{stderr}");
    assert!(!String::from_utf8_lossy(&output.stdout).contains("\"short\""));
}

/// Whether the stored private part of every signing key parses as a usable P-256 key.
async fn stored_keys_usable(app: &TestApp) -> Vec<bool> {
    use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair};
    app.store
        .all_signing_keys()
        .await
        .unwrap()
        .iter()
        .map(|k| EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &k.private_der).is_ok())
        .collect()
}

#[tokio::test]
async fn signing_keys_are_sealed_at_rest_and_converted_tokens_still_verify() {
    // Arrange: an instance without a key-encryption key stores a plain key and issues a token.
    let plain = spawn_app_with(|_| {}).await;
    let before = plain.new_user().await;
    assert_eq!(stored_keys_usable(&plain).await, vec![true]);
    plain.stop().await;

    // Act: the operator seals the keys with the CLI, then runs with the encryption key.
    let sealed = sessiond()
        .env("DATABASE_URL", &plain.db.url)
        .env("SESSIOND__KEYS__ENCRYPTION_KEY", KEK)
        .args(["keys", "seal"])
        .output()
        .unwrap();
    assert!(sealed.status.success(), "{sealed:?}");
    assert!(String::from_utf8_lossy(&sealed.stdout).contains("sealed 1 signing keys"));
    let kek = |s: &mut sessiond::config::Settings| {
        s.keys.encryption_key = Some(SecretString::from(KEK.to_string()));
    };
    let app = spawn_on(plain.db.clone(), kek).await;

    // Assert: the database holds no usable private key, old tokens verify, new ones too.
    assert_eq!(stored_keys_usable(&app).await, vec![false]);
    assert_eq!(app.me(&before.access_token).await.status(), StatusCode::OK);
    let after = app.new_user().await;
    assert_eq!(app.me(&after.access_token).await.status(), StatusCode::OK);
    // A rotation under the encryption key stores the new key sealed as well.
    let rotated = sessiond()
        .env("DATABASE_URL", &app.db.url)
        .env("SESSIOND__KEYS__ENCRYPTION_KEY", KEK)
        .args(["keys", "rotate"])
        .output()
        .unwrap();
    assert!(rotated.status.success(), "{rotated:?}");
    assert_eq!(stored_keys_usable(&app).await, vec![false, false]);

    // Without the encryption key, an instance refuses to start rather than run keyless.
    let settings = {
        let mut s = crate::helpers::test_settings(&app.db);
        s.server.port = 0;
        s
    };
    let refused = sessiond::startup::Application::build(settings).await;
    let message = format!("{:#}", refused.err().expect("start-up must fail"));
    assert!(
        message.contains("sealed with a key-encryption key"),
        "{message}"
    );
}

#[tokio::test]
async fn a_plaintext_key_is_sealed_at_start_once_the_kek_is_set() {
    // Arrange: keys written in plaintext, before sealing was configured.
    let plain = spawn_app_with(|_| {}).await;
    let before = plain.new_user().await;
    plain.stop().await;

    // Act: the service restarts with the encryption key set, and nobody ran `keys seal`.
    let app = spawn_on(plain.db.clone(), |s| {
        s.keys.encryption_key = Some(SecretString::from(KEK.to_string()));
    })
    .await;

    // Assert: the row is sealed in the database, and the service still works with it.
    assert_eq!(stored_keys_usable(&app).await, vec![false]);
    assert_eq!(app.me(&before.access_token).await.status(), StatusCode::OK);
    let after = app.new_user().await;
    assert_eq!(app.me(&after.access_token).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_shell_without_the_kek_cannot_write_a_plaintext_key_into_a_sealed_database() {
    // Arrange: a service whose keys are sealed.
    let app = spawn_app_with(|s| {
        s.keys.encryption_key = Some(SecretString::from(KEK.to_string()));
    })
    .await;
    let session = app.new_user().await;
    let keys_before = app.store.all_signing_keys().await.unwrap().len();

    // Act: an operator runs `keys rotate` and `keys retire` from a shell without the KEK.
    let kid = crate::helpers::kid_of(&session.access_token);
    let mut refusals = Vec::new();
    for args in [vec!["keys", "rotate"], vec!["keys", "retire", kid.as_str()]] {
        let output = sessiond()
            .env("DATABASE_URL", &app.db.url)
            .env_remove("SESSIOND__KEYS__ENCRYPTION_KEY")
            .args(&args)
            .output()
            .unwrap();
        refusals.push(output);
    }

    // Assert: both refused, naming the missing setting; nothing was written.
    for output in &refusals {
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{output:?}");
        assert!(stderr.contains("keys.encryption_key"), "{stderr}");
    }
    assert_eq!(
        app.store.all_signing_keys().await.unwrap().len(),
        keys_before
    );
    assert_eq!(stored_keys_usable(&app).await, vec![false]);
    assert_eq!(app.me(&session.access_token).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn the_per_address_guest_budget_is_off_when_zero() {
    // The default test settings turn it off; many guests from one address then all pass.
    let app = spawn_app_with(|s| s.rate_limits.guests_per_minute = 0).await;
    for _ in 0..40 {
        assert_eq!(
            app.post("/v1/guest").send().await.unwrap().status(),
            StatusCode::CREATED
        );
    }
}
