//! Accounts people can recover (`../shared/API.md`, "Accounts"), through a real SMTP server
//! started by each test: verification, password reset, sign-in by link and by code, email
//! change, self-deletion and re-authentication; tokens single use and purpose-bound, expiry
//! on the injected clock, the same answers for unknown addresses, send limits, an SMTP server
//! that is down, two instances sharing one outbox, and links that never carry a request header.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{
    STRONG_PASSWORD, Session, TestApp, assert_error, claims_of, spawn_app_with, spawn_on, within,
};
use crate::smtp::{Received, SmtpServer, mail_to};

const NEW_PASSWORD: &str = "a brand new horse battery 11";

async fn app_with_mail(smtp: &SmtpServer) -> TestApp {
    let port = smtp.port;
    spawn_app_with(move |s| mail_to(s, port)).await
}

async fn post(app: &TestApp, path: &str, body: Value) -> reqwest::Response {
    app.post_json(path, &body).await
}

async fn post_bearer(app: &TestApp, path: &str, token: &str, body: Value) -> reqwest::Response {
    app.post(path)
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap()
}

async fn accepted(response: reqwest::Response) -> Value {
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    response.json().await.unwrap()
}

/// The token of the newest mail to `address` once `count` have arrived, checking its link.
async fn token_of(smtp: &SmtpServer, address: &str, count: usize, kind: &str) -> String {
    let mails = smtp.wait_for(address, count).await;
    let mail = mails.last().unwrap();
    check_link(mail, kind);
    mail.link_param("token").expect("a token in the link")
}

fn check_link(mail: &Received, kind: &str) {
    let link = url::Url::parse(&mail.link().expect("a link")).unwrap();
    assert_eq!(link.host_str(), Some("app.example.com"), "{mail:?}");
    assert_eq!(link.path(), "/auth");
    assert_eq!(mail.link_param("type").as_deref(), Some(kind));
}

/// Waits until the outbox has nothing left to send.
async fn outbox_drained(app: &TestApp) {
    let drained = within(Duration::from_secs(10), || async {
        app.store.count_queued_mail().await.unwrap() == 0
    })
    .await;
    assert!(drained, "the outbox still holds messages");
}

#[tokio::test]
async fn an_address_is_verified_by_its_mailed_link_once() {
    let smtp = SmtpServer::start().await;
    let app = app_with_mail(&smtp).await;
    let ann = app.new_user_with_email("ann@example.com").await;
    assert_eq!(ann.body["user"]["email_verified"], false);

    let sent = post_bearer(&app, "/v1/email/verify/send", &ann.access_token, json!({})).await;

    assert_eq!(accepted(sent).await, json!({ "accepted": true }));
    let token = token_of(&smtp, "ann@example.com", 1, "verify_email").await;
    let verified = post(&app, "/v1/email/verify", json!({ "token": token })).await;
    assert_eq!(verified.status(), StatusCode::OK);
    let body: Value = verified.json().await.unwrap();
    assert_eq!(body["user"]["email_verified"], true);
    assert_eq!(body["user"]["email"], "ann@example.com");
    let me: Value = app.me(&ann.access_token).await.json().await.unwrap();
    assert_eq!(me["user"]["email_verified"], true);
    let again = post(&app, "/v1/email/verify", json!({ "token": token })).await;
    assert_error(again, StatusCode::BAD_REQUEST, "invalid_grant").await;
    // A new token of the purpose carries the claim in the next access token.
    let refreshed = app.refresh_ok(&ann.refresh_token).await;
    assert_eq!(claims_of(&refreshed.access_token)["email_verified"], true);
    // A guest has no address to verify.
    let guest = app.guest().await;
    let refused = post_bearer(
        &app,
        "/v1/email/verify/send",
        &guest.access_token,
        json!({}),
    )
    .await;
    assert_error(refused, StatusCode::FORBIDDEN, "forbidden").await;
}

#[tokio::test]
async fn a_password_reset_ends_every_session_and_signs_in_with_the_new_password() {
    let smtp = SmtpServer::start().await;
    let app = app_with_mail(&smtp).await;
    let ann = app.new_user_with_email("ann@example.com").await;
    let other = app.login_ok("ann@example.com", STRONG_PASSWORD).await;

    accepted(
        post(
            &app,
            "/v1/password/forgot",
            json!({ "email": "Ann@Example.com " }),
        )
        .await,
    )
    .await;
    let token = token_of(&smtp, "ann@example.com", 1, "reset_password").await;
    // The token is bound to its purpose: it signs nobody in.
    let wrong_purpose = post(&app, "/v1/login/email/verify", json!({ "token": token })).await;
    assert_error(wrong_purpose, StatusCode::BAD_REQUEST, "invalid_grant").await;
    let weak = post(
        &app,
        "/v1/password/reset",
        json!({ "token": token, "new_password": "password" }),
    )
    .await;
    assert_error(weak, StatusCode::UNPROCESSABLE_ENTITY, "weak_password").await;
    // A refused password spent the token: ask again.
    accepted(
        post(
            &app,
            "/v1/password/forgot",
            json!({ "email": "ann@example.com" }),
        )
        .await,
    )
    .await;
    let token = token_of(&smtp, "ann@example.com", 2, "reset_password").await;
    let reset = post(
        &app,
        "/v1/password/reset",
        json!({ "token": token, "new_password": NEW_PASSWORD }),
    )
    .await;

    assert_eq!(reset.status(), StatusCode::OK);
    let fresh = Session::from_body(reset.json().await.unwrap());
    assert_eq!(
        fresh.body["user"]["email_verified"], true,
        "the mail proved it"
    );
    assert_eq!(claims_of(&fresh.access_token)["amr"], json!(["email"]));
    for old in [&ann, &other] {
        crate::helpers::refused_within_a_second(&app, &old.access_token).await;
        let refresh = app.refresh(&old.refresh_token).await;
        assert_error(refresh, StatusCode::UNAUTHORIZED, "session_revoked").await;
    }
    let reason: (String,) =
        sqlx::query_as("select revoked_reason from user_sessions where id = $1")
            .bind(&other.session_id)
            .fetch_one(&mut crate::helpers::raw_connection(&app.db.url).await)
            .await
            .unwrap();
    assert_eq!(reason.0, "password_reset");
    let old_password = app.login("ann@example.com", STRONG_PASSWORD).await;
    assert_error(
        old_password,
        StatusCode::UNAUTHORIZED,
        "invalid_credentials",
    )
    .await;
    app.login_ok("ann@example.com", NEW_PASSWORD).await;
    let spent = post(
        &app,
        "/v1/password/reset",
        json!({ "token": token, "new_password": NEW_PASSWORD }),
    )
    .await;
    assert_error(spent, StatusCode::BAD_REQUEST, "invalid_grant").await;
}

#[tokio::test]
async fn unknown_addresses_get_the_same_answers_and_no_mail() {
    let smtp = SmtpServer::start().await;
    let app = app_with_mail(&smtp).await;
    app.new_user_with_email("ann@example.com").await;

    let mut answers = Vec::new();
    for (path, email) in [
        ("/v1/password/forgot", "ann@example.com"),
        ("/v1/password/forgot", "nobody@example.com"),
        ("/v1/login/email", "ann@example.com"),
        ("/v1/login/email", "nobody@example.com"),
    ] {
        let started = Instant::now();
        let response = post(&app, path, json!({ "email": email })).await;
        let status = response.status();
        let headers: Vec<String> = response
            .headers()
            .iter()
            .map(|(k, _)| k.to_string())
            .filter(|k| k != "x-request-id" && k != "date")
            .collect();
        answers.push((status, headers, response.text().await.unwrap()));
        // The same work either way (one row queued): no lookup of the address in the request.
        assert!(started.elapsed() < Duration::from_secs(2));
    }

    assert_eq!(answers[0], answers[1]);
    assert_eq!(answers[2], answers[3]);
    outbox_drained(&app).await;
    assert_eq!(smtp.to("ann@example.com").len(), 2);
    assert!(smtp.to("nobody@example.com").is_empty());
    let unknown_token = post(&app, "/v1/email/verify", json!({ "token": "x".repeat(43) })).await;
    assert_error(unknown_token, StatusCode::BAD_REQUEST, "invalid_grant").await;
    let trail = app.store.audit_events(None, 50).await.unwrap();
    let guessed = trail
        .iter()
        .find(|e| e.kind == "credential_check_failed")
        .expect("a token that works for nothing is audited");
    assert_eq!(guessed.detail["credential"], "mail_token");
    assert_eq!(guessed.detail["purpose"], "verify_email");
    let requested = trail
        .iter()
        .filter(|e| e.kind == "password_reset_requested")
        .count();
    assert_eq!(
        requested, 2,
        "every request is audited, known address or not"
    );
}

#[tokio::test]
async fn sent_mail_and_spent_tokens_are_purged_after_their_retention() {
    let smtp = SmtpServer::start().await;
    let app = app_with_mail(&smtp).await;
    app.new_user_with_email("ann@example.com").await;
    accepted(
        post(
            &app,
            "/v1/password/forgot",
            json!({ "email": "ann@example.com" }),
        )
        .await,
    )
    .await;
    smtp.wait_for("ann@example.com", 1).await;
    outbox_drained(&app).await;
    let upkeep = &app.services.upkeep;
    assert_eq!(sessiond::services::maintenance::purge_mail(upkeep).await, 0);

    app.advance_clock(24 * 3600 + 1);

    // The sent message, and the reset token that expired meanwhile.
    assert_eq!(sessiond::services::maintenance::purge_mail(upkeep).await, 2);
}

#[tokio::test]
async fn sign_in_by_link_or_by_code_and_five_wrong_codes_spend_it() {
    let smtp = SmtpServer::start().await;
    let app = app_with_mail(&smtp).await;
    app.new_user_with_email("ann@example.com").await;
    let email = "ann@example.com";

    accepted(post(&app, "/v1/login/email", json!({ "email": email })).await).await;
    let token = token_of(&smtp, email, 1, "sign_in").await;
    let by_link = post(&app, "/v1/login/email/verify", json!({ "token": token })).await;
    assert_eq!(by_link.status(), StatusCode::OK);
    let session = Session::from_body(by_link.json().await.unwrap());
    assert_eq!(claims_of(&session.access_token)["amr"], json!(["email"]));
    assert_eq!(session.body["user"]["email_verified"], true);
    let spent = post(&app, "/v1/login/email/verify", json!({ "token": token })).await;
    assert_error(spent, StatusCode::BAD_REQUEST, "invalid_grant").await;

    accepted(post(&app, "/v1/login/email", json!({ "email": email })).await).await;
    let mails = smtp.wait_for(email, 2).await;
    let code = mails[1].code().expect("a code in the subject");
    assert!(mails[1].data.contains(&code), "the code is in the body too");
    let wrong = if code == "000000" { "111111" } else { "000000" };
    for _ in 0..4 {
        let response = post(
            &app,
            "/v1/login/email/verify",
            json!({ "email": email, "code": wrong }),
        )
        .await;
        assert_error(response, StatusCode::BAD_REQUEST, "invalid_grant").await;
    }
    let right = post(
        &app,
        "/v1/login/email/verify",
        json!({ "email": email, "code": code }),
    )
    .await;
    assert_eq!(
        right.status(),
        StatusCode::OK,
        "the fifth try is still allowed"
    );

    accepted(post(&app, "/v1/login/email", json!({ "email": email })).await).await;
    let mails = smtp.wait_for(email, 3).await;
    let code = mails[2].code().unwrap();
    let wrong = if code == "000000" { "111111" } else { "000000" };
    for _ in 0..5 {
        let response = post(
            &app,
            "/v1/login/email/verify",
            json!({ "email": email, "code": wrong }),
        )
        .await;
        assert_error(response, StatusCode::BAD_REQUEST, "invalid_grant").await;
    }
    let too_late = post(
        &app,
        "/v1/login/email/verify",
        json!({ "email": email, "code": code }),
    )
    .await;
    assert_error(too_late, StatusCode::BAD_REQUEST, "invalid_grant").await;
    let both = post(
        &app,
        "/v1/login/email/verify",
        json!({ "token": "x", "email": email, "code": code }),
    )
    .await;
    assert_error(both, StatusCode::BAD_REQUEST, "invalid_request").await;
}

#[tokio::test]
async fn mailed_tokens_expire_on_the_clock_and_the_newest_wins() {
    let smtp = SmtpServer::start().await;
    let app = app_with_mail(&smtp).await;
    app.new_user_with_email("ann@example.com").await;
    let email = "ann@example.com";

    accepted(post(&app, "/v1/password/forgot", json!({ "email": email })).await).await;
    let older = token_of(&smtp, email, 1, "reset_password").await;
    accepted(post(&app, "/v1/password/forgot", json!({ "email": email })).await).await;
    let newer = token_of(&smtp, email, 2, "reset_password").await;
    let body = |token: &str| json!({ "token": token, "new_password": NEW_PASSWORD });
    let superseded = post(&app, "/v1/password/reset", body(&older)).await;
    assert_error(superseded, StatusCode::BAD_REQUEST, "invalid_grant").await;

    app.advance_clock(30 * 60 + 1);

    let expired = post(&app, "/v1/password/reset", body(&newer)).await;
    assert_error(expired, StatusCode::BAD_REQUEST, "invalid_grant").await;
}

#[tokio::test]
async fn an_email_change_is_confirmed_on_the_new_address_after_a_fresh_authentication() {
    let smtp = SmtpServer::start().await;
    let app = app_with_mail(&smtp).await;
    let ann = app.new_user_with_email("ann@example.com").await;
    app.new_user_with_email("taken@example.com").await;
    app.advance_clock(301);
    let stale = app.refresh_ok(&ann.refresh_token).await;

    let refused = post_bearer(
        &app,
        "/v1/email/change",
        &stale.access_token,
        json!({ "new_email": "new@example.com" }),
    )
    .await;

    assert_eq!(
        refused.headers()["www-authenticate"],
        "Bearer error=\"insufficient_user_authentication\", max_age=300"
    );
    assert_error(
        refused,
        StatusCode::UNAUTHORIZED,
        "insufficient_user_authentication",
    )
    .await;
    let wrong = post_bearer(
        &app,
        "/v1/reauth",
        &stale.access_token,
        json!({ "password": "not it at all", "refresh_token": stale.refresh_token }),
    )
    .await;
    assert_error(wrong, StatusCode::UNAUTHORIZED, "invalid_credentials").await;
    let reauth = post_bearer(
        &app,
        "/v1/reauth",
        &stale.access_token,
        json!({ "password": STRONG_PASSWORD, "refresh_token": stale.refresh_token }),
    )
    .await;
    assert_eq!(reauth.status(), StatusCode::OK);
    let fresh = Session::from_body(reauth.json().await.unwrap());
    assert_eq!(fresh.session_id, ann.session_id, "the same session");
    let auth_time = claims_of(&fresh.access_token)["auth_time"]
        .as_i64()
        .unwrap();
    let stale_time = claims_of(&stale.access_token)["auth_time"]
        .as_i64()
        .unwrap();
    assert!(auth_time >= stale_time + 301, "{auth_time} vs {stale_time}");
    app.refresh_ok(&fresh.refresh_token).await;

    let ask = |new_email: &'static str| {
        post_bearer(
            &app,
            "/v1/email/change",
            &fresh.access_token,
            json!({ "new_email": new_email }),
        )
    };
    accepted(ask("taken@example.com").await).await;
    let taken = token_of(&smtp, "taken@example.com", 1, "change_email").await;
    let conflict = post(&app, "/v1/email/change/confirm", json!({ "token": taken })).await;
    assert_error(conflict, StatusCode::CONFLICT, "email_taken").await;
    accepted(ask("new@example.com").await).await;
    let notices = smtp.wait_for("ann@example.com", 2).await;
    assert!(notices[0].link().is_none(), "the notice carries no link");
    let token = token_of(&smtp, "new@example.com", 1, "change_email").await;
    let confirmed = post(&app, "/v1/email/change/confirm", json!({ "token": token })).await;
    assert_eq!(confirmed.status(), StatusCode::OK);
    let body: Value = confirmed.json().await.unwrap();
    assert_eq!(body["user"]["email"], "new@example.com");
    assert_eq!(body["user"]["email_verified"], true);
    app.login_ok("new@example.com", STRONG_PASSWORD).await;
    let old = app.login("ann@example.com", STRONG_PASSWORD).await;
    assert_error(old, StatusCode::UNAUTHORIZED, "invalid_credentials").await;
}

#[tokio::test]
async fn a_user_deletes_their_own_account_only_when_fresh() {
    let smtp = SmtpServer::start().await;
    let app = app_with_mail(&smtp).await;
    let ann = app.new_user_with_email("ann@example.com").await;
    let other = app.login_ok("ann@example.com", STRONG_PASSWORD).await;
    let delete = |token: String| {
        let request = app.client.delete(app.url("/v1/me")).bearer_auth(token);
        async move { request.send().await.unwrap() }
    };
    app.advance_clock(301);
    let stale = app.refresh_ok(&ann.refresh_token).await;

    let refused = delete(stale.access_token.clone()).await;
    assert_error(
        refused,
        StatusCode::UNAUTHORIZED,
        "insufficient_user_authentication",
    )
    .await;
    let deleted = delete(other.access_token.clone()).await;
    assert_error(
        deleted,
        StatusCode::UNAUTHORIZED,
        "insufficient_user_authentication",
    )
    .await;
    let reauth = post_bearer(
        &app,
        "/v1/reauth",
        &stale.access_token,
        json!({ "password": STRONG_PASSWORD }),
    )
    .await;
    let fresh = Session::from_body(reauth.json().await.unwrap());
    let deleted = delete(fresh.access_token.clone()).await;

    assert_eq!(deleted.status(), StatusCode::NO_CONTENT);
    crate::helpers::refused_within_a_second(&app, &other.access_token).await;
    let login = app.login("ann@example.com", STRONG_PASSWORD).await;
    assert_error(login, StatusCode::UNAUTHORIZED, "invalid_credentials").await;
    let trail = app
        .store
        .audit_events(Some(&ann.user_id), 50)
        .await
        .unwrap();
    assert!(trail.iter().any(|e| e.kind == "user_deleted"), "{trail:?}");
}

#[tokio::test]
async fn sends_are_limited_per_recipient_and_still_answer_202() {
    let smtp = SmtpServer::start().await;
    let port = smtp.port;
    let app = spawn_app_with(move |s| {
        mail_to(s, port);
        s.accounts.sends_per_recipient_per_hour = 2;
    })
    .await;
    app.new_user_with_email("ann@example.com").await;

    for _ in 0..4 {
        let response = post(
            &app,
            "/v1/password/forgot",
            json!({ "email": "ann@example.com" }),
        )
        .await;
        assert_eq!(accepted(response).await, json!({ "accepted": true }));
    }

    outbox_drained(&app).await;
    assert_eq!(smtp.to("ann@example.com").len(), 2);
    let metrics = app.metrics_text().await;
    assert!(
        metrics.contains("sessiond_mail_total{outcome=\"limited\"} 2"),
        "{metrics}"
    );
}

#[tokio::test]
async fn a_dead_mail_server_delays_mail_but_not_the_request() {
    let port = SmtpServer::free_port().await;
    let app = spawn_app_with(move |s| mail_to(s, port)).await;
    app.new_user_with_email("ann@example.com").await;

    let started = Instant::now();
    let response = post(
        &app,
        "/v1/password/forgot",
        json!({ "email": "ann@example.com" }),
    )
    .await;

    accepted(response).await;
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    let retried = within(Duration::from_secs(10), || async {
        app.metrics_text()
            .await
            .contains("sessiond_mail_total{outcome=\"retried\"} 1")
    })
    .await;
    assert!(retried, "the first try failed and was scheduled again");
    let smtp = SmtpServer::start_on(port).await;
    app.advance_clock(5);
    let mails = smtp.wait_for("ann@example.com", 1).await;
    check_link(&mails[0], "reset_password");
    outbox_drained(&app).await;
}

#[tokio::test]
async fn a_mail_that_keeps_failing_is_dead_lettered_and_audited() {
    let port = SmtpServer::free_port().await;
    let app = spawn_app_with(move |s| {
        mail_to(s, port);
        s.mail.max_attempts = 2;
    })
    .await;
    let ann = app.new_user_with_email("ann@example.com").await;
    accepted(post_bearer(&app, "/v1/email/verify/send", &ann.access_token, json!({})).await).await;

    let dead = within(Duration::from_secs(10), || async {
        app.advance_clock(2);
        app.metrics_text()
            .await
            .contains("sessiond_mail_total{outcome=\"dead\"} 1")
    })
    .await;

    assert!(dead);
    outbox_drained(&app).await;
    let trail = app
        .store
        .audit_events(Some(&ann.user_id), 50)
        .await
        .unwrap();
    let event = trail
        .iter()
        .find(|e| e.kind == "mail_dead_lettered")
        .expect("audited");
    assert_eq!(event.detail["kind"], "verify_email");
    assert_eq!(event.detail["attempts"], 2);
}

#[tokio::test]
async fn two_instances_share_one_outbox_and_send_each_mail_once() {
    let smtp = SmtpServer::start().await;
    let port = smtp.port;
    let a = spawn_app_with(move |s| mail_to(s, port)).await;
    let b = spawn_on(a.db.clone(), move |s| mail_to(s, port)).await;
    let users: Vec<String> = (0..12).map(|i| format!("user{i}@example.com")).collect();
    for email in &users {
        a.new_user_with_email(email).await;
    }

    for (i, email) in users.iter().enumerate() {
        let app = if i % 2 == 0 { &a } else { &b };
        accepted(post(app, "/v1/password/forgot", json!({ "email": email })).await).await;
    }

    for email in &users {
        smtp.wait_for(email, 1).await;
    }
    outbox_drained(&a).await;
    // A second copy would come from a second claim of a sent message: none turns up.
    let duplicate = within(Duration::from_millis(500), || async {
        users.iter().any(|email| smtp.to(email).len() > 1)
    })
    .await;
    assert!(!duplicate, "a mail was sent twice");
    for email in &users {
        assert_eq!(smtp.to(email).len(), 1, "{email}: exactly one mail");
    }
}

#[tokio::test]
async fn links_come_from_configuration_never_from_the_request() {
    let smtp = SmtpServer::start().await;
    let app = app_with_mail(&smtp).await;
    app.new_user_with_email("ann@example.com").await;

    let response = app
        .post("/v1/password/forgot")
        .header("host", "evil.example")
        .header("x-forwarded-host", "evil.example")
        .header("origin", "https://evil.example")
        .header("referer", "https://evil.example/page")
        .json(&json!({ "email": "ann@example.com" }))
        .send()
        .await
        .unwrap();

    accepted(response).await;
    let mails = smtp.wait_for("ann@example.com", 1).await;
    check_link(&mails[0], "reset_password");
    assert!(!mails[0].data.contains("evil.example"), "{:?}", mails[0]);
}

#[tokio::test]
async fn required_verification_holds_back_login_and_refresh_until_verified() {
    let smtp = SmtpServer::start().await;
    let port = smtp.port;
    let app = spawn_app_with(move |s| {
        mail_to(s, port);
        s.accounts.require_verified_email = true;
    })
    .await;
    let ann = app.new_user_with_email("ann@example.com").await;

    let login = app.login("ann@example.com", STRONG_PASSWORD).await;
    assert_error(login, StatusCode::FORBIDDEN, "email_not_verified").await;
    let refresh = app.refresh(&ann.refresh_token).await;
    assert_error(refresh, StatusCode::FORBIDDEN, "email_not_verified").await;
    let wrong = app
        .login("ann@example.com", "not the password at all")
        .await;
    assert_error(wrong, StatusCode::UNAUTHORIZED, "invalid_credentials").await;

    accepted(post_bearer(&app, "/v1/email/verify/send", &ann.access_token, json!({})).await).await;
    let token = token_of(&smtp, "ann@example.com", 1, "verify_email").await;
    let verified = post(&app, "/v1/email/verify", json!({ "token": token })).await;
    assert_eq!(verified.status(), StatusCode::OK);

    app.refresh_ok(&ann.refresh_token).await;
    app.login_ok("ann@example.com", STRONG_PASSWORD).await;
    let guest = app.guest().await;
    app.refresh_ok(&guest.refresh_token).await;
}
