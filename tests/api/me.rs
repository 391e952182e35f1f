//! `GET /v1/me` and everything that must make an access token fail.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{
    TestApp, access_tokens_for, assert_error, claims_of, header_of, kid_of,
    signed_by_a_foreign_key, spawn_app, subject,
};

async fn assert_refused(app: &TestApp, token: &str) {
    let response = app.me(token).await;
    assert!(response.headers().contains_key("www-authenticate"));
    assert_error(response, StatusCode::UNAUTHORIZED, "invalid_token").await;
}

#[tokio::test]
async fn me_returns_the_user_and_the_current_session() {
    let app = spawn_app().await;
    let session = app.new_user_with_email("ann@example.com").await;
    let response = app.me(&session.access_token).await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["user"]["id"], session.user_id.as_str());
    assert_eq!(body["user"]["email"], "ann@example.com");
    assert_eq!(body["user"]["is_guest"], false);
    assert_eq!(body["session"]["id"], session.session_id.as_str());
    assert_eq!(body["session"]["kind"], "password");
    assert_eq!(body["session"]["current"], true);
    assert!(body["session"]["expires_at"].is_i64());
}

#[tokio::test]
async fn access_tokens_carry_the_contract_claims() {
    let app = spawn_app().await;
    let session = app.new_user_with_email("ann@example.com").await;
    let header = header_of(&session.access_token);
    assert_eq!(header["alg"], "ES256");
    assert_eq!(header["typ"], "at+jwt");
    let claims = claims_of(&session.access_token);
    assert_eq!(claims["sub"], session.user_id.as_str());
    assert_eq!(claims["sid"], session.session_id.as_str());
    assert_eq!(claims["iss"], "http://localhost:8080");
    assert_eq!(claims["aud"], "sessiond");
    assert_eq!(claims["amr"], json!(["pwd"]));
    assert_eq!(claims["email"], "ann@example.com");
    assert_eq!(claims["is_guest"], false);
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        900
    );
    assert!(claims["jti"].is_string());
}

#[tokio::test]
async fn missing_or_malformed_authorization_is_401() {
    let app = spawn_app().await;
    let none = app.get("/v1/me").send().await.unwrap();
    assert_error(none, StatusCode::UNAUTHORIZED, "invalid_token").await;
    let basic = app
        .get("/v1/me")
        .basic_auth("ann", Some("pw"))
        .send()
        .await
        .unwrap();
    assert_error(basic, StatusCode::UNAUTHORIZED, "invalid_token").await;
    for garbage in ["x", "a.b.c", "eyJhbGciOiJFUzI1NiJ9.e30.", "....."] {
        assert_refused(&app, garbage).await;
    }
}

#[tokio::test]
async fn a_token_signed_by_another_key_is_refused() {
    let app = spawn_app().await;
    let session = app.new_user().await;
    let forged = signed_by_a_foreign_key(&session.access_token);
    assert_refused(&app, &forged).await;
}

#[tokio::test]
async fn a_tampered_payload_is_refused() {
    let app = spawn_app().await;
    let session = app.new_user().await;
    let mut claims = claims_of(&session.access_token);
    claims["sub"] = json!(uuid::Uuid::now_v7().to_string());
    let parts: Vec<&str> = session.access_token.split('.').collect();
    let payload = URL_SAFE_NO_PAD.encode(claims.to_string());
    assert_refused(&app, &format!("{}.{}.{}", parts[0], payload, parts[2])).await;
}

#[tokio::test]
async fn alg_none_and_hs256_confusion_are_refused() {
    let app = spawn_app().await;
    let session = app.new_user().await;
    let kid = kid_of(&session.access_token);
    let claims = claims_of(&session.access_token).to_string();
    let none_header = json!({"alg": "none", "typ": "at+jwt", "kid": kid}).to_string();
    let unsigned = format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(none_header),
        URL_SAFE_NO_PAD.encode(&claims)
    );
    assert_refused(&app, &unsigned).await;

    // HS256 keyed with the public JWK, the classic algorithm-confusion forgery.
    let jwks = app.jwks().await;
    let mut header = Header::new(Algorithm::HS256);
    header.typ = Some("at+jwt".into());
    header.kid = Some(kid);
    let secret = EncodingKey::from_secret(jwks["keys"][0].to_string().as_bytes());
    let forged = jsonwebtoken::encode(&header, &claims_of(&session.access_token), &secret).unwrap();
    assert_refused(&app, &forged).await;
}

#[tokio::test]
async fn an_expired_token_is_refused() {
    let app = spawn_app().await;
    let session = app.new_user().await;
    let issued_long_ago = crate::helpers::system_now() - 901;
    let (expired, _) = app
        .core
        .tokens
        .issue(subject(&session), issued_long_ago)
        .unwrap();
    let response = app.me(&expired).await;
    let body = assert_error(response, StatusCode::UNAUTHORIZED, "invalid_token").await;
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("expired")
    );
    // The same session with a current token is fine: only the expiry differed.
    let (fresh, _) = app
        .core
        .tokens
        .issue(subject(&session), crate::helpers::system_now())
        .unwrap();
    assert_eq!(app.me(&fresh).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn tokens_for_another_audience_or_issuer_are_refused() {
    let app = spawn_app().await;
    let session = app.new_user().await;
    let now = crate::helpers::system_now();
    let other_aud = access_tokens_for(&app, "http://localhost:8080", "billing");
    let other_iss = access_tokens_for(&app, "http://evil.example", "sessiond");
    for tokens in [other_aud, other_iss] {
        let (token, _) = tokens.issue(subject(&session), now).unwrap();
        assert_refused(&app, &token).await;
    }
}

#[tokio::test]
async fn a_logged_out_sessions_token_is_refused_at_once() {
    let app = spawn_app().await;
    let session = app.new_user().await;
    assert_eq!(app.me(&session.access_token).await.status(), StatusCode::OK);
    assert_eq!(
        app.logout(&session.access_token, None).await.status(),
        StatusCode::NO_CONTENT
    );
    assert_refused(&app, &session.access_token).await;
}
