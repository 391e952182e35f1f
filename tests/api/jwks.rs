//! Discovery: another service verifies our access tokens with the JWKS alone.

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::{kid_of, spawn_app};

#[tokio::test]
async fn an_access_token_verifies_with_the_published_jwks() {
    let app = spawn_app().await;
    let session = app.new_user().await;
    let response = app.get("/.well-known/jwks.json").send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let jwks: JwkSet = response.json().await.unwrap();

    let header = jsonwebtoken::decode_header(&session.access_token).unwrap();
    let jwk = jwks
        .find(header.kid.as_deref().unwrap())
        .expect("kid is published");
    let key = DecodingKey::from_jwk(jwk).unwrap();
    let mut validation = Validation::new(Algorithm::ES256);
    validation.set_issuer(&["http://localhost:8080"]);
    validation.set_audience(&["sessiond"]);
    let data = jsonwebtoken::decode::<Value>(&session.access_token, &key, &validation).unwrap();
    assert_eq!(data.claims["sid"], session.session_id.as_str());
}

#[tokio::test]
async fn the_jwks_publishes_public_keys_only() {
    let app = spawn_app().await;
    let jwks = app.jwks().await;
    let keys = jwks["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 1);
    for key in keys {
        assert_eq!(key["kty"], "EC");
        assert_eq!(key["use"], "sig");
        assert_eq!(key["alg"], "ES256");
        assert!(key["kid"].is_string());
        assert!(key.get("d").is_none(), "private part leaked: {key}");
    }
}

#[tokio::test]
async fn openid_configuration_points_at_the_endpoints() {
    let app = spawn_app().await;
    let config: Value = app
        .get("/.well-known/openid-configuration")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(config["issuer"], "http://localhost:8080");
    assert_eq!(
        config["jwks_uri"],
        "http://localhost:8080/.well-known/jwks.json"
    );
    assert_eq!(
        config["revocation_endpoint"],
        "http://localhost:8080/v1/revoke"
    );
    assert!(config["introspection_endpoint"].is_string());
}

#[tokio::test]
async fn a_rotated_key_keeps_verifying_tokens_it_signed() {
    let app = spawn_app().await;
    let before = app.new_user().await;
    let now = crate::helpers::system_now();
    let key = sessiond::credentials::tokens::keys::generate_key(now).unwrap();
    app.store.rotate_signing_key(&key, now).await.unwrap();
    app.core.tokens.keys().reload().await.unwrap();

    let after = app.new_user().await;
    assert_eq!(kid_of(&after.access_token), key.kid);
    assert_ne!(kid_of(&before.access_token), key.kid);
    assert_eq!(app.me(&before.access_token).await.status(), StatusCode::OK);
    assert_eq!(app.me(&after.access_token).await.status(), StatusCode::OK);
    let jwks = app.jwks().await;
    assert_eq!(jwks["keys"].as_array().unwrap().len(), 2);
}
