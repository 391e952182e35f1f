//! Second factors (`../shared/API.md`, "Second factors, passkeys and step-up"): a TOTP
//! authenticator enrolled, confirmed and disabled; logins that answer `mfa_required` and are
//! completed with a code or a recovery code; codes accepted once; wrong codes throttled and
//! audited; re-authentication with a code; `acr` and `amr` in tokens and introspection. Codes
//! come from `otp.rs`, computed independently of the server.

use reqwest::StatusCode;
use secrecy::SecretString;
use serde_json::{Value, json};

use crate::helpers::{
    STRONG_PASSWORD, Session, TestApp, assert_error, claims_of, spawn_app, spawn_app_with,
};
use crate::otp::{base32_decode, code_at, next_code};
use crate::service::{INTROSPECT_KEY, introspect, spawn_service_app};

async fn post_bearer(app: &TestApp, path: &str, token: &str, body: Value) -> reqwest::Response {
    app.post(path)
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap()
}

fn now(app: &TestApp) -> i64 {
    app.core.clock.now()
}

/// A user with a confirmed authenticator: their session, the raw secret, and recovery codes.
struct Enrolled {
    session: Session,
    email: String,
    secret: Vec<u8>,
    recovery_codes: Vec<String>,
}

async fn enrolled_user(app: &TestApp) -> Enrolled {
    let email = crate::helpers::fresh_email();
    let session = app.new_user_with_email(&email).await;
    let enrolled = post_bearer(app, "/v1/mfa/totp", &session.access_token, json!({})).await;
    assert_eq!(enrolled.status(), StatusCode::CREATED);
    let body: Value = enrolled.json().await.unwrap();
    let secret = base32_decode(body["secret"].as_str().unwrap());
    let uri = body["otpauth_uri"].as_str().unwrap();
    assert!(uri.starts_with("otpauth://totp/"), "{uri}");
    assert!(uri.contains(body["secret"].as_str().unwrap()), "{uri}");
    let code = code_at(&secret, now(app));
    let confirmed = post_bearer(
        app,
        "/v1/mfa/totp/confirm",
        &session.access_token,
        json!({ "code": code }),
    )
    .await;
    assert_eq!(confirmed.status(), StatusCode::OK);
    let body: Value = confirmed.json().await.unwrap();
    let recovery_codes: Vec<String> = body["recovery_codes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_string())
        .collect();
    Enrolled {
        session,
        email,
        secret,
        recovery_codes,
    }
}

/// Logs in with the password and expects `mfa_required`; returns the `mfa_token`.
async fn mfa_token_for(app: &TestApp, email: &str) -> String {
    let response = app.login(email, STRONG_PASSWORD).await;
    mfa_token_of(response).await
}

async fn mfa_token_of(response: reqwest::Response) -> String {
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "mfa_required", "{body}");
    assert!(body["error_description"].is_string());
    assert_eq!(body["methods"], json!(["totp", "recovery_code"]));
    assert!(body.get("access_token").is_none());
    body["mfa_token"].as_str().unwrap().to_string()
}

async fn login_mfa(app: &TestApp, body: Value) -> reqwest::Response {
    app.post_json("/v1/login/mfa", &body).await
}

#[tokio::test]
async fn a_login_with_an_authenticator_needs_its_code_and_says_so_in_acr_and_amr() {
    let app = spawn_service_app().await;
    let user = enrolled_user(&app).await;
    assert_eq!(user.recovery_codes.len(), 10);

    let mfa_token = mfa_token_for(&app, &user.email).await;
    // The code the authenticator shows next (the confirming code's step is spent).
    let code = next_code(&user.secret, now(&app));
    app.advance_clock(30);
    let done = login_mfa(&app, json!({ "mfa_token": mfa_token, "code": code })).await;

    assert_eq!(done.status(), StatusCode::OK);
    let session = Session::from_body(done.json().await.unwrap());
    let claims = claims_of(&session.access_token);
    assert_eq!(claims["amr"], json!(["pwd", "otp"]));
    assert_eq!(claims["acr"], "2");
    assert_eq!(claims["auth_time"], now(&app));
    let introspected = introspect(&app, Some(INTROSPECT_KEY), &session.access_token).await;
    let introspected: Value = introspected.json().await.unwrap();
    assert_eq!(introspected["active"], true, "{introspected}");
    assert_eq!(introspected["acr"], "2");
    assert_eq!(introspected["amr"], json!(["pwd", "otp"]));
    // One factor only: acr 1.
    assert_eq!(claims_of(&user.session.access_token)["acr"], "1");

    // The mfa_token is spent, and the same code does not count twice.
    let again = login_mfa(&app, json!({ "mfa_token": mfa_token, "code": code })).await;
    assert_error(again, StatusCode::BAD_REQUEST, "invalid_grant").await;
    let second_token = mfa_token_for(&app, &user.email).await;
    let replay = login_mfa(&app, json!({ "mfa_token": second_token, "code": code })).await;
    assert_error(replay, StatusCode::BAD_REQUEST, "invalid_grant").await;
}

#[tokio::test]
async fn five_wrong_codes_spend_the_mfa_token_and_each_is_audited_and_throttled() {
    let app = spawn_app_with(|s| s.throttle.client_failures = 5).await;
    let user = enrolled_user(&app).await;
    let mfa_token = mfa_token_for(&app, &user.email).await;
    let right = next_code(&user.secret, now(&app));
    let wrong = if right == "000000" {
        "111111"
    } else {
        "000000"
    };
    app.advance_clock(30);
    for _ in 0..5 {
        let response = login_mfa(&app, json!({ "mfa_token": mfa_token, "code": wrong })).await;
        assert_error(response, StatusCode::BAD_REQUEST, "invalid_grant").await;
    }
    let late = login_mfa(&app, json!({ "mfa_token": mfa_token, "code": right })).await;
    let status = late.status();
    assert!(
        status == StatusCode::BAD_REQUEST || status == StatusCode::TOO_MANY_REQUESTS,
        "a spent token or a throttled account, never a session: {status}"
    );
    let trail = app.store.audit_events(None, 100).await.unwrap();
    let wrong_codes = trail
        .iter()
        .filter(|e| e.kind == "credential_check_failed" && e.detail["credential"] == "totp")
        .count();
    assert_eq!(wrong_codes, 5, "every wrong code is audited");
    assert!(trail.iter().any(|e| e.kind == "mfa_challenged"));
    // Wrong codes count against the account like wrong passwords: this address is blocked.
    let password = app.login(&user.email, STRONG_PASSWORD).await;
    assert_eq!(password.status(), StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test]
async fn a_recovery_code_works_once_and_an_mfa_token_expires_after_five_minutes() {
    let app = spawn_app().await;
    let user = enrolled_user(&app).await;
    let code = user.recovery_codes[3].to_uppercase();

    let mfa_token = mfa_token_for(&app, &user.email).await;
    let done = login_mfa(
        &app,
        json!({ "mfa_token": mfa_token, "recovery_code": code }),
    )
    .await;
    assert_eq!(done.status(), StatusCode::OK);
    let session = Session::from_body(done.json().await.unwrap());
    assert_eq!(
        claims_of(&session.access_token)["amr"],
        json!(["pwd", "rc"])
    );
    let trail = app.store.audit_events(None, 50).await.unwrap();
    let used = trail
        .iter()
        .find(|e| e.kind == "recovery_code_used")
        .unwrap();
    assert_eq!(used.detail["left"], 9);

    let mfa_token = mfa_token_for(&app, &user.email).await;
    let reused = login_mfa(
        &app,
        json!({ "mfa_token": mfa_token, "recovery_code": code }),
    )
    .await;
    assert_error(reused, StatusCode::BAD_REQUEST, "invalid_grant").await;

    let mfa_token = mfa_token_for(&app, &user.email).await;
    app.advance_clock(301);
    let other = user.recovery_codes[4].clone();
    let expired = login_mfa(
        &app,
        json!({ "mfa_token": mfa_token, "recovery_code": other }),
    )
    .await;
    assert_error(expired, StatusCode::BAD_REQUEST, "invalid_grant").await;

    let both = login_mfa(
        &app,
        json!({ "mfa_token": mfa_token, "recovery_code": other, "code": "123456" }),
    )
    .await;
    assert_error(both, StatusCode::BAD_REQUEST, "invalid_request").await;
}

#[tokio::test]
async fn enrolling_and_disabling_need_a_fresh_session_and_disabling_ends_the_second_step() {
    let app = spawn_app().await;
    let guest = app.guest().await;
    let refused = post_bearer(&app, "/v1/mfa/totp", &guest.access_token, json!({})).await;
    assert_error(refused, StatusCode::FORBIDDEN, "forbidden").await;

    let user = enrolled_user(&app).await;
    let token = &user.session.access_token;
    let again = post_bearer(&app, "/v1/mfa/totp", token, json!({})).await;
    assert_error(again, StatusCode::CONFLICT, "already_enabled").await;

    app.advance_clock(301);
    let stale = app
        .client
        .delete(app.url("/v1/mfa/totp"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let challenge = stale.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_string();
    assert_error(
        stale,
        StatusCode::UNAUTHORIZED,
        "insufficient_user_authentication",
    )
    .await;
    assert!(challenge.contains("max_age=300"), "{challenge}");

    // Step up with a code: a fresh auth_time, and the session now has two factors.
    let code = code_at(&user.secret, now(&app));
    let reauth = post_bearer(&app, "/v1/reauth", token, json!({ "code": code })).await;
    assert_eq!(reauth.status(), StatusCode::OK);
    let stepped = Session::from_body(reauth.json().await.unwrap());
    let claims = claims_of(&stepped.access_token);
    assert_eq!(claims["auth_time"], now(&app));
    assert_eq!(claims["amr"], json!(["pwd", "otp"]));
    assert_eq!(claims["acr"], "2");
    assert_eq!(
        stepped.session_id, user.session.session_id,
        "the same session"
    );

    let disabled = app
        .client
        .delete(app.url("/v1/mfa/totp"))
        .bearer_auth(&stepped.access_token)
        .send()
        .await
        .unwrap();
    assert_eq!(disabled.status(), StatusCode::NO_CONTENT);
    let plain = app.login(&user.email, STRONG_PASSWORD).await;
    assert_eq!(plain.status(), StatusCode::OK, "no second step any more");
    let no_factor = post_bearer(
        &app,
        "/v1/reauth",
        &stepped.access_token,
        json!({ "code": code_at(&user.secret, now(&app) + 30) }),
    )
    .await;
    assert_error(no_factor, StatusCode::FORBIDDEN, "forbidden").await;
    let kinds: Vec<String> = app
        .store
        .audit_events(None, 50)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.kind)
        .collect();
    for kind in [
        "totp_enrolled",
        "totp_enabled",
        "totp_disabled",
        "reauthenticated",
    ] {
        assert!(kinds.iter().any(|k| k == kind), "{kind} in {kinds:?}");
    }
}

#[tokio::test]
async fn a_wrong_first_code_does_not_confirm_and_a_pending_enrollment_can_restart() {
    let app = spawn_app().await;
    let session = app.new_user().await;
    let token = &session.access_token;
    let first = post_bearer(&app, "/v1/mfa/totp", token, json!({})).await;
    let first: Value = first.json().await.unwrap();
    let secret = base32_decode(first["secret"].as_str().unwrap());
    let right = code_at(&secret, now(&app));
    let wrong = if right == "000000" {
        "111111"
    } else {
        "000000"
    };
    let refused = post_bearer(
        &app,
        "/v1/mfa/totp/confirm",
        token,
        json!({ "code": wrong }),
    )
    .await;
    assert_error(refused, StatusCode::BAD_REQUEST, "invalid_grant").await;
    let email = session.body["user"]["email"].as_str().unwrap();
    assert_eq!(
        app.login(email, STRONG_PASSWORD).await.status(),
        StatusCode::OK
    );

    // A new enrollment replaces the pending one: the old secret's code no longer confirms.
    let second = post_bearer(&app, "/v1/mfa/totp", token, json!({})).await;
    assert_eq!(second.status(), StatusCode::CREATED);
    let old = post_bearer(
        &app,
        "/v1/mfa/totp/confirm",
        token,
        json!({ "code": right }),
    )
    .await;
    assert_error(old, StatusCode::BAD_REQUEST, "invalid_grant").await;
    let none = app
        .client
        .delete(app.url("/v1/mfa/totp"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(
        none.status(),
        StatusCode::NO_CONTENT,
        "a pending one is removed too"
    );
    let nothing = post_bearer(
        &app,
        "/v1/mfa/totp/confirm",
        token,
        json!({ "code": right }),
    )
    .await;
    assert_error(nothing, StatusCode::NOT_FOUND, "not_found").await;
}

#[tokio::test]
async fn the_secret_is_sealed_at_rest_under_the_key_encryption_key() {
    let kek = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";
    let app = spawn_app_with(|s| s.keys.encryption_key = Some(SecretString::from(kek))).await;
    let user = enrolled_user(&app).await;
    let mut connection = crate::helpers::raw_connection(&app.db.url).await;
    let (stored,): (Vec<u8>,) =
        sqlx::query_as("select secret_sealed from totp_factors where user_id = $1")
            .bind(&user.session.user_id)
            .fetch_one(&mut connection)
            .await
            .unwrap();
    assert!(stored.starts_with(b"SKS2"), "sealed");
    assert!(!stored.windows(user.secret.len()).any(|w| w == user.secret));
    // It still opens for the server: a login completes with a code.
    let mfa_token = mfa_token_for(&app, &user.email).await;
    let code = next_code(&user.secret, now(&app));
    app.advance_clock(30);
    let done = login_mfa(&app, json!({ "mfa_token": mfa_token, "code": code })).await;
    assert_eq!(done.status(), StatusCode::OK);
}

#[tokio::test]
async fn changing_the_password_needs_a_fresh_session() {
    let app = spawn_app().await;
    let session = app.new_user().await;
    app.advance_clock(301);
    let body =
        json!({ "current_password": STRONG_PASSWORD, "new_password": "another horse battery 12" });
    let stale = app.change_password(&session.access_token, &body).await;
    assert_error(
        stale,
        StatusCode::UNAUTHORIZED,
        "insufficient_user_authentication",
    )
    .await;
    let reauth = post_bearer(
        &app,
        "/v1/reauth",
        &session.access_token,
        json!({ "password": STRONG_PASSWORD }),
    )
    .await;
    let fresh = Session::from_body(reauth.json().await.unwrap());
    let changed = app.change_password(&fresh.access_token, &body).await;
    assert_eq!(changed.status(), StatusCode::NO_CONTENT);
}

#[tokio::test]
async fn a_sign_in_by_mail_is_only_the_first_factor() {
    let smtp = crate::smtp::SmtpServer::start().await;
    let port = smtp.port;
    let app = spawn_app_with(move |s| crate::smtp::mail_to(s, port)).await;
    let user = enrolled_user(&app).await;
    let sent = app
        .post_json("/v1/login/email", &json!({ "email": user.email }))
        .await;
    assert_eq!(sent.status(), StatusCode::ACCEPTED);
    let mails = smtp.wait_for(&user.email, 1).await;
    let token = mails[0].link_param("token").unwrap();
    let signed_in = app
        .post_json("/v1/login/email/verify", &json!({ "token": token }))
        .await;
    let mfa_token = mfa_token_of(signed_in).await;
    let code = next_code(&user.secret, now(&app));
    app.advance_clock(30);
    let done = login_mfa(&app, json!({ "mfa_token": mfa_token, "code": code })).await;
    assert_eq!(done.status(), StatusCode::OK);
    let session = Session::from_body(done.json().await.unwrap());
    assert_eq!(
        claims_of(&session.access_token)["amr"],
        json!(["email", "otp"])
    );
}
