//! CORS: listed origins get credentialed access; others, and `null`, get no CORS headers.

use reqwest::StatusCode;

use crate::helpers::{TestApp, spawn_app_with};

const APP_ORIGIN: &str = "https://app.example.com";

async fn app() -> TestApp {
    spawn_app_with(|s| {
        s.cors.allowed_origins = vec![APP_ORIGIN.into(), "http://localhost:5173".into()]
    })
    .await
}

async fn preflight(app: &TestApp, origin: &str) -> reqwest::Response {
    app.client
        .request(reqwest::Method::OPTIONS, app.url("/v1/login"))
        .header("origin", origin)
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", "content-type")
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_listed_origin_gets_a_credentialed_preflight_and_response() {
    let app = app().await;
    let response = preflight(&app, APP_ORIGIN).await;
    assert!(response.status().is_success(), "{}", response.status());
    let headers = response.headers();
    assert_eq!(headers["access-control-allow-origin"], APP_ORIGIN);
    assert_eq!(headers["access-control-allow-credentials"], "true");
    assert!(
        headers["access-control-allow-methods"]
            .to_str()
            .unwrap()
            .contains("POST")
    );

    let me = app
        .get("/healthz")
        .header("origin", APP_ORIGIN)
        .send()
        .await
        .unwrap();
    assert_eq!(me.headers()["access-control-allow-origin"], APP_ORIGIN);
    assert_eq!(me.headers()["access-control-allow-credentials"], "true");
    // A page reads the request id, how long to wait, and the RFC 9470 step-up challenge.
    let exposed = me.headers()["access-control-expose-headers"]
        .to_str()
        .unwrap()
        .to_lowercase();
    for name in ["x-request-id", "retry-after", "www-authenticate"] {
        assert!(exposed.contains(name), "{name} in {exposed}");
    }
}

#[tokio::test]
async fn other_origins_wildcards_and_null_get_no_cors_headers() {
    let app = app().await;
    for origin in [
        "https://evil.example.com",
        "null",
        "https://app.example.com.evil.com",
    ] {
        let response = preflight(&app, origin).await;
        assert!(
            !response
                .headers()
                .contains_key("access-control-allow-origin"),
            "{origin} was allowed"
        );
        let simple = app
            .get("/healthz")
            .header("origin", origin)
            .send()
            .await
            .unwrap();
        assert_eq!(
            simple.status(),
            StatusCode::OK,
            "servers without CORS still get answers"
        );
        assert!(!simple.headers().contains_key("access-control-allow-origin"));
    }
}

#[tokio::test]
async fn a_wildcard_or_null_allowlist_refuses_to_start() {
    for bad in ["*", "null", "https://app.example.com/"] {
        let db = crate::helpers::TestDb::new().await;
        let mut settings = crate::helpers::test_settings(&db);
        settings.cors.allowed_origins = vec![bad.into()];
        assert!(
            sessiond::startup::Application::build(settings)
                .await
                .is_err(),
            "{bad} accepted"
        );
    }
}
