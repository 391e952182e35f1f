//! `POST /v1/bridge`: third-party tokens (Supabase HS256, RS256 and ES256 issuers publishing a
//! JWKS) exchanged for local sessions, everything that must make verification fail (without
//! creating a user), and how the service treats the issuer's JWKS endpoint: cached, refetched
//! on rotation at a bounded rate, failing closed with 503 when it has no keys, and riding out
//! an outage on the keys it already holds.

use std::time::{Duration, Instant};

use jsonwebtoken::Algorithm;
use jsonwebtoken::jwk::Jwk;
use reqwest::header::{CACHE_CONTROL, CONTENT_TYPE, RETRY_AFTER};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use sessiond::config::ProviderSettings;
use sessiond::config::Settings;

use crate::bridge_keys::{
    Behaviour, IssuerKey, JwksServer, SUPABASE, SUPABASE_AUD, SUPABASE_ISS, SUPABASE_SECRET,
    claims, jwks_of, jwks_provider, secret_provider, sign_hs256, supabase_claims,
    supabase_provider, supabase_token, unsigned, with_payload,
};
use crate::helpers::{
    STRONG_PASSWORD, Session, TestApp, assert_error, claims_of, count_users, spawn_app_with,
};
use crate::service::{ADMIN_KEY, admin, with_test_keys};

const STAGING: &str = "supabase-staging";
const STAGING_ISS: &str = "https://staging.supabase.co/auth/v1";
const STAGING_SECRET: &str = "another-jwt-secret-for-the-staging-project-0123456789";

const AUTH0: &str = "auth0";
const AUTH0_ISS: &str = "https://tenant.eu.auth0.com/";
const AUTH0_AUD: &str = "https://api.example.com";

const FIREBASE: &str = "firebase";
const FIREBASE_ISS: &str = "https://securetoken.google.com/my-project";
const FIREBASE_AUD: &str = "my-project";

/// An issuer's JWKS endpoint publishing one RS256 key (Auth0) and one ES256 key (Firebase).
struct Issuers {
    server: JwksServer,
    rsa: IssuerKey,
    ec: IssuerKey,
}

async fn issuers() -> Issuers {
    let rsa = IssuerKey::rs256(0, "rsa-2024");
    let ec = IssuerKey::es256("ec-2024");
    let server = JwksServer::serving(&[&rsa, &ec]).await;
    Issuers { server, rsa, ec }
}

/// Two Supabase projects (HS256 secrets), Auth0 (RS256) and Firebase (ES256) at `jwks_url`.
fn providers(jwks_url: &str) -> Vec<ProviderSettings> {
    vec![
        supabase_provider(),
        secret_provider(STAGING, STAGING_ISS, SUPABASE_AUD, STAGING_SECRET),
        jwks_provider(AUTH0, AUTH0_ISS, AUTH0_AUD, Algorithm::RS256, jwks_url),
        jwks_provider(
            FIREBASE,
            FIREBASE_ISS,
            FIREBASE_AUD,
            Algorithm::ES256,
            jwks_url,
        ),
    ]
}

async fn spawn_bridge_app(jwks_url: &str, customize: impl FnOnce(&mut Settings)) -> TestApp {
    let providers = providers(jwks_url);
    spawn_app_with(move |settings| {
        settings.bridge.providers = providers;
        customize(settings);
    })
    .await
}

fn new_sub() -> String {
    uuid::Uuid::new_v4().to_string()
}

fn auth0_claims(sub: &str) -> Value {
    claims(AUTH0_ISS, AUTH0_AUD, sub, None)
}

fn firebase_claims(sub: &str) -> Value {
    claims(FIREBASE_ISS, FIREBASE_AUD, sub, None)
}

/// Exchanges `token`; panics unless the answer is 200 with a token response.
async fn exchanged(app: &TestApp, provider: &str, token: &str) -> Session {
    let response = app.bridge(provider, token).await;
    let status = response.status();
    let body: Value = response.json().await.unwrap();
    assert_eq!(status, StatusCode::OK, "{provider}: {body}");
    Session::from_body(body)
}

/// The exchange is refused as `invalid_bridge_token` and leaves no user behind.
async fn assert_refused(app: &TestApp, provider: &str, token: &str, case: &str) {
    let before = count_users(app).await;
    let response = app.bridge(provider, token).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{case}");
    assert_error(response, StatusCode::UNAUTHORIZED, "invalid_bridge_token").await;
    assert_eq!(count_users(app).await, before, "{case}: no user is created");
}

/// The exchange is 503 `unavailable` with `Retry-After`, and leaves no user behind.
async fn assert_unavailable(app: &TestApp, provider: &str, token: &str) {
    let before = count_users(app).await;
    let response = app.bridge(provider, token).await;
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(response.headers().contains_key(RETRY_AFTER));
    assert_error(response, StatusCode::SERVICE_UNAVAILABLE, "unavailable").await;
    assert_eq!(count_users(app).await, before, "no user is created");
}

#[tokio::test]
async fn a_supabase_token_is_exchanged_for_a_bridge_session() {
    // Arrange
    let app = spawn_bridge_app("http://127.0.0.1:9/unused", |_| {}).await;
    let sub = new_sub();
    let token = supabase_token(&sub, Some("ann@example.com"));

    // Act
    let response = app.bridge(SUPABASE, &token).await;

    // Assert
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response
            .headers()
            .get(CACHE_CONTROL)
            .and_then(|v| v.to_str().ok()),
        Some("no-store")
    );
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 900);
    assert!(body["refresh_token"].is_string(), "{body}");
    assert_eq!(body["user"]["email"], "ann@example.com");
    assert_eq!(body["user"]["is_guest"], false);
    let session = Session::from_body(body);
    assert_ne!(
        session.user_id, sub,
        "the local user id is not the issuer's"
    );

    let access = claims_of(&session.access_token);
    assert_eq!(access["amr"], json!(["bridge:supabase"]));
    assert_eq!(access["sub"], session.user_id.as_str());
    assert_eq!(access["sid"], session.session_id.as_str());
    assert_eq!(access["email"], "ann@example.com");

    let me = app.me(&session.access_token).await;
    assert_eq!(me.status(), StatusCode::OK);
    let me: Value = me.json().await.unwrap();
    assert_eq!(me["user"]["id"], session.user_id.as_str());
    assert_eq!(me["user"]["email"], "ann@example.com");
    assert_eq!(me["session"]["id"], session.session_id.as_str());
    assert_eq!(me["session"]["kind"], "bridge");
    assert_eq!(me["session"]["provider"], SUPABASE);

    // The session refreshes like any other, and keeps what it is.
    let refreshed = app.refresh_ok(&session.refresh_token).await;
    assert_eq!(refreshed.user_id, session.user_id);
    assert_eq!(refreshed.session_id, session.session_id);
    assert_eq!(
        claims_of(&refreshed.access_token)["amr"],
        json!(["bridge:supabase"])
    );

    let sessions = app.sessions_of(&refreshed.access_token).await;
    let listed = sessions
        .iter()
        .find(|s| s["id"] == session.session_id.as_str())
        .expect("the bridged session is listed")
        .clone();
    assert_eq!(listed["kind"], "bridge");
    assert_eq!(listed["provider"], SUPABASE);
    assert_eq!(listed["current"], true);

    let logout = app.logout(&refreshed.access_token, None).await;
    assert_eq!(logout.status(), StatusCode::NO_CONTENT);
    let after = app.me(&refreshed.access_token).await;
    assert_error(after, StatusCode::UNAUTHORIZED, "invalid_token").await;
    let spent = app.refresh(&refreshed.refresh_token).await;
    assert_eq!(spent.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn the_same_subject_is_the_same_user_and_another_issuer_another_user() {
    // Arrange
    let app = spawn_bridge_app("http://127.0.0.1:9/unused", |_| {}).await;
    let sub = new_sub();

    // Act
    let first = exchanged(&app, SUPABASE, &supabase_token(&sub, None)).await;
    let second = exchanged(&app, SUPABASE, &supabase_token(&sub, None)).await;
    let staging_token = sign_hs256(
        STAGING_SECRET,
        &claims(STAGING_ISS, SUPABASE_AUD, &sub, None),
    );
    let elsewhere = exchanged(&app, STAGING, &staging_token).await;

    // Assert
    assert_eq!(second.user_id, first.user_id);
    assert_ne!(
        second.session_id, first.session_id,
        "each exchange is a session"
    );
    assert_ne!(elsewhere.user_id, first.user_id);
    assert_eq!(count_users(&app).await, 2);
    assert_eq!(
        claims_of(&elsewhere.access_token)["amr"],
        json!(["bridge:supabase-staging"])
    );
    assert_eq!(first.body["user"]["email"], Value::Null);
}

#[tokio::test]
async fn an_email_that_has_an_account_is_never_linked_to_it() {
    // Arrange
    let app = spawn_bridge_app("http://127.0.0.1:9/unused", |_| {}).await;
    let owner = app.new_user_with_email("ann@example.com").await;

    // Act: the issuer vouches for the same address, exactly and in another case.
    let exact = exchanged(
        &app,
        SUPABASE,
        &supabase_token(&new_sub(), Some("ann@example.com")),
    )
    .await;
    let cased = exchanged(
        &app,
        SUPABASE,
        &supabase_token(&new_sub(), Some(" Ann@Example.COM ")),
    )
    .await;

    // Assert
    for bridged in [&exact, &cased] {
        assert_ne!(bridged.user_id, owner.user_id);
        assert_eq!(bridged.body["user"]["email"], Value::Null);
        let me: Value = app.me(&bridged.access_token).await.json().await.unwrap();
        assert_eq!(me["user"]["id"], bridged.user_id.as_str());
        assert_eq!(me["user"]["email"], Value::Null);
        assert!(claims_of(&bridged.access_token).get("email").is_none());
    }
    assert_ne!(exact.user_id, cased.user_id);
    assert_eq!(count_users(&app).await, 3);
    // The account is untouched: its password still signs in to the same user.
    let login = app.login_ok("ann@example.com", STRONG_PASSWORD).await;
    assert_eq!(login.user_id, owner.user_id);
    assert_eq!(login.body["user"]["email"], "ann@example.com");
    let me: Value = app.me(&owner.access_token).await.json().await.unwrap();
    assert_eq!(me["user"]["email"], "ann@example.com");
}

#[tokio::test]
async fn rs256_and_es256_tokens_verify_against_the_issuers_jwks() {
    // Arrange
    let issuers = issuers().await;
    let app = spawn_bridge_app(&issuers.server.url, |_| {}).await;
    let auth0_sub = format!("auth0|{}", new_sub());
    let firebase_sub = new_sub();

    // Act
    let auth0 = exchanged(&app, AUTH0, &issuers.rsa.sign(&auth0_claims(&auth0_sub))).await;
    let firebase = exchanged(
        &app,
        FIREBASE,
        &issuers.ec.sign(&firebase_claims(&firebase_sub)),
    )
    .await;
    let auth0_again = exchanged(&app, AUTH0, &issuers.rsa.sign(&auth0_claims(&auth0_sub))).await;

    // Assert
    assert_ne!(auth0.user_id, firebase.user_id);
    assert_eq!(auth0_again.user_id, auth0.user_id);
    assert_eq!(
        claims_of(&auth0.access_token)["amr"],
        json!(["bridge:auth0"])
    );
    assert_eq!(
        claims_of(&firebase.access_token)["amr"],
        json!(["bridge:firebase"])
    );
    let me: Value = app.me(&firebase.access_token).await.json().await.unwrap();
    assert_eq!(me["session"]["kind"], "bridge");
    assert_eq!(me["session"]["provider"], FIREBASE);
    // One fetch per provider; the repeated Auth0 exchange used the cached keys.
    assert_eq!(issuers.server.requests(), 2);
}

#[tokio::test]
async fn a_rotated_issuer_key_is_fetched_once_the_refetch_interval_has_passed() {
    // Arrange
    let old = IssuerKey::es256("key-a");
    let new = IssuerKey::es256("key-b");
    let server = JwksServer::serving(&[&old]).await;
    let app = spawn_bridge_app(&server.url, |s| s.bridge.jwks_min_refetch_secs = 5).await;
    exchanged(&app, FIREBASE, &old.sign(&firebase_claims(&new_sub()))).await;
    assert_eq!(server.requests(), 1);

    // Act: the issuer rotates to a key the service has not seen.
    server.set(Behaviour::Serve {
        jwks: jwks_of(&[&new]),
        cache_control: None,
    });
    // Past the refetch interval: the clock counts whole seconds, so an interval of 5 keeps
    // "asking again at once" inside it whenever the real second turns.
    app.advance_clock(6);
    let rotated = app
        .bridge(FIREBASE, &new.sign(&firebase_claims(&new_sub())))
        .await;

    // Assert
    assert_eq!(rotated.status(), StatusCode::OK);
    assert_eq!(server.requests(), 2, "exactly one more fetch");
    // The retired key is gone with the refetched set (and asking again fetches nothing).
    let retired = old.sign(&firebase_claims(&new_sub()));
    assert_refused(&app, FIREBASE, &retired, "retired key").await;
    assert_eq!(server.requests(), 2);
}

#[tokio::test]
async fn unknown_kids_cannot_make_the_service_flood_the_issuer() {
    // Arrange: the default minimum refetch interval (60 s).
    let issuers = issuers().await;
    let app = spawn_bridge_app(&issuers.server.url, |_| {}).await;
    exchanged(
        &app,
        FIREBASE,
        &issuers.ec.sign(&firebase_claims(&new_sub())),
    )
    .await;
    let fetched = issuers.server.requests();
    let before = count_users(&app).await;

    // Act: 20 tokens with made-up kids, all at once.
    let attempts = (0..20).map(|_| {
        let kid = uuid::Uuid::new_v4().simple().to_string();
        let token = issuers.ec.with_kid(&kid).sign(&firebase_claims(&new_sub()));
        let app = &app;
        async move { app.bridge(FIREBASE, &token).await }
    });
    let responses = futures::future::join_all(attempts).await;

    // Assert
    for response in responses {
        assert_error(response, StatusCode::UNAUTHORIZED, "invalid_bridge_token").await;
    }
    assert!(
        issuers.server.requests() <= fetched + 1,
        "{} fetches after the first",
        issuers.server.requests() - fetched
    );
    assert_eq!(count_users(&app).await, before);
    // The known key still works without another fetch.
    let requests = issuers.server.requests();
    exchanged(
        &app,
        FIREBASE,
        &issuers.ec.sign(&firebase_claims(&new_sub())),
    )
    .await;
    assert_eq!(issuers.server.requests(), requests);
}

#[tokio::test]
async fn tokens_with_bad_claims_are_refused_and_create_no_user() {
    // Arrange
    let app = spawn_bridge_app("http://127.0.0.1:9/unused", |_| {}).await;
    // A valid token first: the provider works, so each refusal below is the claim's doing.
    exchanged(&app, SUPABASE, &supabase_token(&new_sub(), None)).await;
    let now = crate::helpers::system_now();
    let edit = |change: &dyn Fn(&mut serde_json::Map<String, Value>)| {
        let mut claims = supabase_claims(&new_sub(), Some("eve@example.com"));
        change(claims.as_object_mut().unwrap());
        claims
    };
    let cases: Vec<(&str, Value)> = vec![
        (
            "wrong iss",
            edit(&|c| {
                c.insert("iss".into(), json!("https://other.supabase.co/auth/v1"));
            }),
        ),
        (
            "iss with a trailing slash",
            edit(&|c| {
                c.insert("iss".into(), json!("https://proj.supabase.co/auth/v1/"));
            }),
        ),
        (
            "iss with a suffix",
            edit(&|c| {
                c.insert("iss".into(), json!("https://proj.supabase.co/auth/v1x"));
            }),
        ),
        (
            "iss with a prefix",
            edit(&|c| {
                c.insert("iss".into(), json!("https://evil.proj.supabase.co/auth/v1"));
            }),
        ),
        (
            "iss in another case",
            edit(&|c| {
                c.insert("iss".into(), json!("https://PROJ.supabase.co/auth/v1"));
            }),
        ),
        (
            "missing iss",
            edit(&|c| {
                c.remove("iss");
            }),
        ),
        (
            "wrong aud",
            edit(&|c| {
                c.insert("aud".into(), json!("anon"));
            }),
        ),
        (
            "aud list without ours",
            edit(&|c| {
                c.insert("aud".into(), json!(["anon", "service_role"]));
            }),
        ),
        (
            "missing aud",
            edit(&|c| {
                c.remove("aud");
            }),
        ),
        (
            "expired an hour ago",
            edit(&|c| {
                c.insert("iat".into(), json!(now - 7200));
                c.insert("exp".into(), json!(now - 3600));
            }),
        ),
        (
            "not valid for another hour",
            edit(&|c| {
                c.insert("nbf".into(), json!(now + 3600));
            }),
        ),
        (
            "issued an hour in the future",
            edit(&|c| {
                c.insert("iat".into(), json!(now + 3600));
                c.insert("exp".into(), json!(now + 7200));
            }),
        ),
        (
            "missing exp",
            edit(&|c| {
                c.remove("exp");
            }),
        ),
        (
            "missing sub",
            edit(&|c| {
                c.remove("sub");
            }),
        ),
        (
            "empty sub",
            edit(&|c| {
                c.insert("sub".into(), json!(""));
            }),
        ),
        (
            "numeric sub",
            edit(&|c| {
                c.insert("sub".into(), json!(42));
            }),
        ),
    ];

    for (case, claims) in &cases {
        // Act + Assert
        let token = sign_hs256(SUPABASE_SECRET, claims);
        assert_refused(&app, SUPABASE, &token, case).await;
    }
    // A token still inside the leeway is fine, so the checks above are not off by a lot.
    let recent = edit(&|c| {
        c.insert("iat".into(), json!(now - 3600));
        c.insert("exp".into(), json!(now - 5));
    });
    exchanged(&app, SUPABASE, &sign_hs256(SUPABASE_SECRET, &recent)).await;
}

#[tokio::test]
async fn forged_signatures_and_algorithm_confusion_are_refused() {
    // Arrange
    let issuers = issuers().await;
    let app = spawn_bridge_app(&issuers.server.url, |_| {}).await;
    let (rsa, ec) = (&issuers.rsa, &issuers.ec);
    // Each provider works with a genuine token.
    exchanged(&app, SUPABASE, &supabase_token(&new_sub(), None)).await;
    exchanged(&app, AUTH0, &rsa.sign(&auth0_claims(&new_sub()))).await;
    exchanged(&app, FIREBASE, &ec.sign(&firebase_claims(&new_sub()))).await;

    let supabase = supabase_claims(&new_sub(), None);
    let auth0 = auth0_claims(&new_sub());
    let firebase = firebase_claims(&new_sub());
    // HS256 keyed with the published public JWK text, with the real kid.
    let confused = |key: &IssuerKey, claims: &Value| {
        let mut header = jsonwebtoken::Header::new(Algorithm::HS256);
        header.kid = Some(key.kid.clone());
        let secret = jsonwebtoken::EncodingKey::from_secret(key.jwk.to_string().as_bytes());
        jsonwebtoken::encode(&header, claims, &secret).unwrap()
    };
    let tampered = |token: &str| {
        let mut claims = claims_of(token);
        claims["sub"] = json!(new_sub());
        with_payload(token, &claims)
    };
    let hs512 = {
        let key = jsonwebtoken::EncodingKey::from_secret(SUPABASE_SECRET.as_bytes());
        let header = jsonwebtoken::Header::new(Algorithm::HS512);
        jsonwebtoken::encode(&header, &supabase, &key).unwrap()
    };
    let cases: Vec<(&str, &str, String)> = vec![
        ("empty token", SUPABASE, String::new()),
        ("not a JWT", SUPABASE, "not.a.jwt".into()),
        ("alg none (HS256 provider)", SUPABASE, unsigned(&supabase)),
        ("alg none (RS256 provider)", AUTH0, unsigned(&auth0)),
        ("alg none (ES256 provider)", FIREBASE, unsigned(&firebase)),
        ("HS256 keyed with the RSA JWK", AUTH0, confused(rsa, &auth0)),
        (
            "HS256 keyed with the EC JWK",
            FIREBASE,
            confused(ec, &firebase),
        ),
        ("RS256 to the HS256 provider", SUPABASE, rsa.sign(&supabase)),
        ("ES256 to the HS256 provider", SUPABASE, ec.sign(&supabase)),
        ("ES256 to the RS256 provider", AUTH0, ec.sign(&auth0)),
        ("RS256 to the ES256 provider", FIREBASE, rsa.sign(&firebase)),
        ("HS512 not allowed", SUPABASE, hs512),
        (
            "another project's secret",
            SUPABASE,
            sign_hs256(STAGING_SECRET, &supabase),
        ),
        (
            "tampered HS256 payload",
            SUPABASE,
            tampered(&sign_hs256(SUPABASE_SECRET, &supabase)),
        ),
        ("tampered RS256 payload", AUTH0, tampered(&rsa.sign(&auth0))),
        (
            "tampered ES256 payload",
            FIREBASE,
            tampered(&ec.sign(&firebase)),
        ),
        (
            "another RSA key with the real kid",
            AUTH0,
            IssuerKey::rs256(1, &rsa.kid).sign(&auth0),
        ),
        (
            "another EC key with the real kid",
            FIREBASE,
            IssuerKey::es256(&ec.kid).sign(&firebase),
        ),
        ("RS256 without a kid", AUTH0, {
            let mut header = rsa.header();
            header.kid = None;
            rsa.sign_with_header(header, &auth0)
        }),
        (
            "a token for Firebase sent as Auth0",
            AUTH0,
            ec.sign(&firebase),
        ),
        (
            "an Auth0 token sent as Supabase",
            SUPABASE,
            rsa.sign(&auth0),
        ),
    ];
    let fetched = issuers.server.requests();

    for (case, provider, token) in &cases {
        // Act + Assert
        assert_refused(&app, provider, token, case).await;
    }
    // None of them made the service go back to the issuer more than the rate limit allows.
    assert!(issuers.server.requests() <= fetched + 2);
}

#[tokio::test]
async fn keys_named_in_the_token_header_are_never_used() {
    // Arrange
    let issuers = issuers().await;
    let attacker = IssuerKey::rs256(1, "attacker-key");
    let attacker_jwks = JwksServer::serving(&[&attacker]).await;
    let app = spawn_bridge_app(&issuers.server.url, |_| {}).await;
    let jwk: Jwk = serde_json::from_value(attacker.jwk.clone()).unwrap();
    let claims = auth0_claims(&new_sub());
    let carrying = |kid: &str| {
        let mut header = attacker.header();
        header.kid = Some(kid.into());
        header.jku = Some(attacker_jwks.url.clone());
        header.x5u = Some(attacker_jwks.url.clone());
        header.jwk = Some(jwk.clone());
        attacker.sign_with_header(header, &claims)
    };

    // Act + Assert: under the attacker's kid and under the issuer's real one.
    assert_refused(&app, AUTH0, &carrying(&attacker.kid), "attacker kid").await;
    assert_refused(&app, AUTH0, &carrying(&issuers.rsa.kid), "issuer kid").await;
    assert_eq!(attacker_jwks.requests(), 0, "the jku was never fetched");
    assert!(
        issuers.server.requests() >= 1,
        "keys came from configuration"
    );
}

#[tokio::test]
async fn an_unknown_provider_is_422() {
    let app = spawn_bridge_app("http://127.0.0.1:9/unused", |_| {}).await;
    let token = supabase_token(&new_sub(), None);
    for provider in ["github", "Supabase", ""] {
        let response = app.bridge(provider, &token).await;
        assert_error(
            response,
            StatusCode::UNPROCESSABLE_ENTITY,
            "unknown_provider",
        )
        .await;
    }
    assert_eq!(count_users(&app).await, 0);
}

#[tokio::test]
async fn malformed_bridge_requests_are_400_or_415() {
    let app = spawn_bridge_app("http://127.0.0.1:9/unused", |_| {}).await;
    let token = supabase_token(&new_sub(), None);
    for body in [
        json!({}),
        json!({ "provider": SUPABASE }),
        json!({ "token": token }),
        json!({ "provider": SUPABASE, "token": 42 }),
        json!({ "provider": null, "token": token }),
    ] {
        let response = app.post_json("/v1/bridge", &body).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{body}");
        assert_error(response, StatusCode::BAD_REQUEST, "invalid_request").await;
    }
    let broken = app
        .post("/v1/bridge")
        .header(CONTENT_TYPE, "application/json")
        .body("{\"provider\": \"supabase\", ")
        .send()
        .await
        .unwrap();
    assert_error(broken, StatusCode::BAD_REQUEST, "invalid_request").await;
    let text = app
        .post("/v1/bridge")
        .header(CONTENT_TYPE, "text/plain")
        .body(json!({ "provider": SUPABASE, "token": token }).to_string())
        .send()
        .await
        .unwrap();
    assert_error(
        text,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
    )
    .await;
    assert_eq!(count_users(&app).await, 0);
}

#[tokio::test]
async fn a_failing_jwks_endpoint_is_503_until_it_recovers() {
    // Arrange
    let key = IssuerKey::es256("ec-1");
    let server = JwksServer::start(Behaviour::Fail).await;
    let app = spawn_bridge_app(&server.url, |s| s.bridge.jwks_min_refetch_secs = 5).await;
    let token = key.sign(&firebase_claims(&new_sub()));

    // Act + Assert: no keys held, so verification fails closed.
    assert_unavailable(&app, FIREBASE, &token).await;
    assert_eq!(server.requests(), 1);
    // Asking again at once does not hammer the failing issuer.
    assert_unavailable(&app, FIREBASE, &token).await;
    assert_eq!(server.requests(), 1);

    // Once it answers again (and the interval has passed), the same token goes through.
    server.set(Behaviour::Serve {
        jwks: jwks_of(&[&key]),
        cache_control: None,
    });
    // Past the refetch interval: the clock counts whole seconds, so an interval of 5 keeps
    // "asking again at once" inside it whenever the real second turns.
    app.advance_clock(6);
    exchanged(&app, FIREBASE, &token).await;
    assert_eq!(server.requests(), 2);
}

#[tokio::test]
async fn an_oversized_jwks_is_503() {
    // A valid JWKS holding the right key, padded past the 64 KiB cap with other keys.
    let key = IssuerKey::es256("ec-1");
    let filler: Vec<IssuerKey> = (0..400)
        .map(|i| key.with_kid(&format!("filler-{i:04}")))
        .collect();
    let mut keys: Vec<&IssuerKey> = filler.iter().collect();
    keys.push(&key);
    let jwks = jwks_of(&keys);
    assert!(jwks.len() > 64 * 1024, "{} bytes", jwks.len());

    for behaviour in [
        Behaviour::Large(jwks.clone()),
        Behaviour::LargeChunked(jwks.clone()),
    ] {
        // Arrange
        let server = JwksServer::start(behaviour).await;
        let app = spawn_bridge_app(&server.url, |_| {}).await;
        let token = key.sign(&firebase_claims(&new_sub()));

        // Act + Assert
        assert_unavailable(&app, FIREBASE, &token).await;
        assert_eq!(server.requests(), 1);
    }
}

#[tokio::test]
async fn a_hanging_jwks_endpoint_times_out_as_503() {
    // Arrange
    let key = IssuerKey::es256("ec-1");
    let server = JwksServer::start(Behaviour::Hang).await;
    let app = spawn_bridge_app(&server.url, |s| s.bridge.jwks_timeout_ms = 500).await;
    let token = key.sign(&firebase_claims(&new_sub()));

    // Act
    let started = Instant::now();
    assert_unavailable(&app, FIREBASE, &token).await;

    // Assert
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "answered after {:?}",
        started.elapsed()
    );
    assert_eq!(server.requests(), 1);
}

#[tokio::test]
async fn cached_keys_keep_working_through_an_issuer_outage() {
    // Arrange: keys cached for a second, then the issuer goes down.
    let issuers = issuers().await;
    issuers.server.set(Behaviour::Serve {
        jwks: jwks_of(&[&issuers.rsa, &issuers.ec]),
        cache_control: Some("public, max-age=1".into()),
    });
    let app = spawn_bridge_app(&issuers.server.url, |s| {
        s.bridge.jwks_min_refetch_secs = 5;
    })
    .await;
    let sub = new_sub();
    let first = exchanged(&app, FIREBASE, &issuers.ec.sign(&firebase_claims(&sub))).await;
    assert_eq!(issuers.server.requests(), 1);
    issuers.server.set(Behaviour::Fail);
    // Past the refetch interval: the clock counts whole seconds, so an interval of 5 keeps
    // "asking again at once" inside it whenever the real second turns.
    app.advance_clock(6);

    // Act: the cached keys are stale, the refetch fails, and the held key still verifies.
    let during = exchanged(&app, FIREBASE, &issuers.ec.sign(&firebase_claims(&sub))).await;

    // Assert
    assert_eq!(during.user_id, first.user_id);
    assert_eq!(
        issuers.server.requests(),
        2,
        "the service did try the issuer"
    );
    // A kid it never held is still refused, not waved through.
    let unknown = issuers
        .ec
        .with_kid("never-published")
        .sign(&firebase_claims(&new_sub()));
    assert_refused(&app, FIREBASE, &unknown, "unknown kid during the outage").await;
}

#[tokio::test]
async fn a_bridge_exchange_is_on_the_audit_trail() {
    // Arrange
    let app = spawn_bridge_app("http://127.0.0.1:9/unused", with_test_keys).await;
    let session = exchanged(
        &app,
        SUPABASE,
        &supabase_token(&new_sub(), Some("ann@example.com")),
    )
    .await;

    // Act
    let path = format!("/v1/admin/audit?user_id={}", session.user_id);
    let response = admin(&app, Method::GET, &path, Some(ADMIN_KEY))
        .send()
        .await
        .unwrap();

    // Assert
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    let events = body["events"].as_array().expect("an events array");
    let bridge = events
        .iter()
        .find(|e| e["type"] == "bridge")
        .unwrap_or_else(|| panic!("a bridge event in {body}"));
    assert_eq!(bridge["user_id"], session.user_id.as_str());
    assert_eq!(bridge["session_id"], session.session_id.as_str());
    assert_eq!(bridge["detail"]["provider"], SUPABASE);
    assert_eq!(bridge["detail"]["issuer"], SUPABASE_ISS);
    assert!(
        !body.to_string().contains(&session.access_token),
        "no token in the audit trail"
    );
}

#[tokio::test]
async fn concurrent_first_exchanges_of_one_subject_make_one_user() {
    // Arrange
    let app = spawn_bridge_app("http://127.0.0.1:9/unused", |_| {}).await;
    let sub = new_sub();

    // Act: several tabs exchange the same new identity at once.
    let attempts = (0..8).map(|_| {
        let token = supabase_token(&sub, Some("ann@example.com"));
        let app = &app;
        async move { exchanged(app, SUPABASE, &token).await }
    });
    let sessions = futures::future::join_all(attempts).await;

    // Assert
    let first = &sessions[0].user_id;
    assert!(sessions.iter().all(|s| &s.user_id == first));
    assert!(
        sessions
            .iter()
            .all(|s| s.body["user"]["email"] == "ann@example.com")
    );
    assert_eq!(count_users(&app).await, 1);
}

#[tokio::test]
async fn a_deleted_bridged_user_comes_back_as_a_new_user() {
    // Arrange
    let app = spawn_bridge_app("http://127.0.0.1:9/unused", with_test_keys).await;
    let sub = new_sub();
    let first = exchanged(
        &app,
        SUPABASE,
        &supabase_token(&sub, Some("ann@example.com")),
    )
    .await;
    let path = format!("/v1/admin/users/{}", first.user_id);
    let deleted = admin(&app, Method::DELETE, &path, Some(ADMIN_KEY))
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), StatusCode::NO_CONTENT);

    // Act
    let again = exchanged(
        &app,
        SUPABASE,
        &supabase_token(&sub, Some("ann@example.com")),
    )
    .await;

    // Assert
    assert_ne!(again.user_id, first.user_id);
    assert_eq!(again.body["user"]["email"], "ann@example.com");
    assert_eq!(count_users(&app).await, 1);
    let old = app.me(&first.access_token).await;
    assert_error(old, StatusCode::UNAUTHORIZED, "invalid_token").await;
}

#[tokio::test]
async fn a_key_published_for_encryption_does_not_verify_signatures() {
    // Arrange: the issuer's JWKS marks the key `use: enc` (RFC 7517 4.2).
    let key = IssuerKey::es256("enc-key");
    let mut published = key.clone();
    published.jwk["use"] = json!("enc");
    let server = JwksServer::serving(&[&published]).await;
    let app = spawn_bridge_app(&server.url, |_| {}).await;

    // Act + Assert
    let token = key.sign(&firebase_claims(&new_sub()));
    assert_refused(&app, FIREBASE, &token, "use: enc").await;
}

#[tokio::test]
async fn an_email_the_issuer_has_not_verified_is_not_copied() {
    let app = spawn_bridge_app("http://127.0.0.1:9/unused", |_| {}).await;
    let mut unverified = supabase_claims(&new_sub(), Some("victim@example.com"));
    unverified["email_verified"] = json!(false);
    let session = exchanged(&app, SUPABASE, &sign_hs256(SUPABASE_SECRET, &unverified)).await;
    assert_eq!(session.body["user"]["email"], Value::Null);
    // The owner of the address can still sign up with it.
    app.new_user_with_email("victim@example.com").await;

    let mut verified = supabase_claims(&new_sub(), Some("ann@example.com"));
    verified["email_verified"] = json!(true);
    let session = exchanged(&app, SUPABASE, &sign_hs256(SUPABASE_SECRET, &verified)).await;
    assert_eq!(session.body["user"]["email"], "ann@example.com");
    assert_eq!(
        session.body["user"]["email_verified"], true,
        "the issuer's claim"
    );
    assert_eq!(claims_of(&session.access_token)["email_verified"], true);
}

#[tokio::test]
async fn an_email_without_email_verified_is_copied_only_from_a_trusted_provider() {
    // Arrange: Supabase access tokens carry `email` but no `email_verified`.
    let app = spawn_bridge_app("http://127.0.0.1:9/unused", |s| {
        let staging = s.bridge.providers.iter_mut().find(|p| p.name == STAGING);
        staging.unwrap().trust_email = true;
    })
    .await;
    let mut silent = supabase_claims(&new_sub(), Some("victim@example.com"));
    silent.as_object_mut().unwrap().remove("email_verified");

    // Act + Assert: an untrusted provider's unconfirmed address is not copied...
    let session = exchanged(&app, SUPABASE, &sign_hs256(SUPABASE_SECRET, &silent)).await;
    assert_eq!(session.body["user"]["email"], Value::Null);
    assert!(claims_of(&session.access_token).get("email").is_none());
    app.new_user_with_email("victim@example.com").await;

    // ...while a provider configured with trust_email = true vouches for its addresses.
    let mut trusted = claims(
        STAGING_ISS,
        SUPABASE_AUD,
        &new_sub(),
        Some("bo@example.com"),
    );
    trusted.as_object_mut().unwrap().remove("email_verified");
    let session = exchanged(&app, STAGING, &sign_hs256(STAGING_SECRET, &trusted)).await;
    assert_eq!(session.body["user"]["email"], "bo@example.com");
    // Copied, but not verified: the issuer said nothing about it...
    assert_eq!(session.body["user"]["email_verified"], false);
    // ...until it does: the local flag follows the issuer's claim.
    trusted["email_verified"] = json!(true);
    let again = exchanged(&app, STAGING, &sign_hs256(STAGING_SECRET, &trusted)).await;
    assert_eq!(again.user_id, session.user_id);
    assert_eq!(again.body["user"]["email_verified"], true);
}

#[tokio::test]
async fn a_json_array_body_is_refused() {
    let app = spawn_bridge_app("http://127.0.0.1:9/unused", |_| {}).await;
    let token = supabase_token(&new_sub(), None);
    let response = app.post_json("/v1/bridge", &json!([SUPABASE, token])).await;
    assert_error(response, StatusCode::BAD_REQUEST, "invalid_request").await;
    assert_eq!(count_users(&app).await, 0);
}

#[tokio::test]
async fn a_bridge_session_past_the_per_user_cap_ends_the_least_recently_used_one() {
    // Arrange: one session per user.
    let app = spawn_bridge_app("http://127.0.0.1:9/unused", |s| {
        s.sessions.max_per_user = 1;
    })
    .await;
    let sub = new_sub();
    let first = exchanged(&app, SUPABASE, &supabase_token(&sub, None)).await;

    // Act
    let second = exchanged(&app, SUPABASE, &supabase_token(&sub, None)).await;

    // Assert: the first session ended; the second is the user's only one.
    crate::helpers::refused_within_a_second(&app, &first.access_token).await;
    let live = app.sessions_of(&second.access_token).await;
    assert_eq!(live.len(), 1);
    assert_eq!(live[0]["id"], second.session_id.as_str());
}
