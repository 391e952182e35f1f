//! Cookie mode: the refresh token lives in an HttpOnly cookie, and cookie-authenticated
//! refresh and logout pass the Origin and content-type checks or get 403.

use reqwest::StatusCode;
use reqwest::header::{CONTENT_TYPE, SET_COOKIE};
use serde_json::{Value, json};

use crate::helpers::{STRONG_PASSWORD, TestApp, assert_error, spawn_app_with};

const ORIGIN: &str = "http://localhost:5173";
const COOKIE: &str = "sessiond_refresh";

/// Cookie mode as for local development on http://localhost.
async fn app() -> TestApp {
    spawn_app_with(|s| {
        s.cookies.enabled = true;
        s.cookies.secure = false;
        s.cookies.name = COOKIE.into();
        s.cors.allowed_origins = vec![ORIGIN.into()];
    })
    .await
}

/// The refresh cookie a response set: its value and its full Set-Cookie text.
fn refresh_cookie(response: &reqwest::Response) -> (String, String) {
    let header = response
        .headers()
        .get_all(SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .find(|c| c.starts_with(&format!("{COOKIE}=")))
        .expect("a refresh cookie");
    let value = header.split(';').next().unwrap()[COOKIE.len() + 1..].to_string();
    (value, header)
}

async fn cookie_post(
    app: &TestApp,
    path: &str,
    cookie: &str,
    origin: Option<&str>,
) -> reqwest::Response {
    let mut request = app
        .post(path)
        .header("cookie", format!("{COOKIE}={cookie}"))
        .header(CONTENT_TYPE, "application/json")
        .body("{}");
    if let Some(origin) = origin {
        request = request.header("origin", origin);
    }
    request.send().await.unwrap()
}

#[tokio::test]
async fn token_responses_set_an_httponly_cookie_and_leave_the_token_out_of_json() {
    let app = app().await;
    let response = app.signup("ann@example.com", STRONG_PASSWORD).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let (value, header) = refresh_cookie(&response);
    assert_eq!(value.len(), 43);
    assert!(
        header.contains("HttpOnly") && header.contains("SameSite=Lax") && header.contains("Path=/"),
        "{header}"
    );
    let body: Value = response.json().await.unwrap();
    assert!(body.get("refresh_token").is_none(), "{body}");
    assert!(body["access_token"].is_string());
}

#[tokio::test]
async fn refresh_with_the_cookie_from_an_allowed_origin_rotates_it() {
    let app = app().await;
    let (cookie, _) = refresh_cookie(&app.signup("ann@example.com", STRONG_PASSWORD).await);
    let response = cookie_post(&app, "/v1/token/refresh", &cookie, Some(ORIGIN)).await;
    assert_eq!(response.status(), StatusCode::OK);
    let (next, _) = refresh_cookie(&response);
    assert_ne!(next, cookie);
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        app.me(body["access_token"].as_str().unwrap())
            .await
            .status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn cookie_requests_without_an_allowed_origin_or_json_are_403_and_change_nothing() {
    let app = app().await;
    let (cookie, _) = refresh_cookie(&app.signup("ann@example.com", STRONG_PASSWORD).await);
    for origin in [None, Some("https://evil.example.com"), Some("null")] {
        let refused = cookie_post(&app, "/v1/token/refresh", &cookie, origin).await;
        assert_error(refused, StatusCode::FORBIDDEN, "forbidden").await;
        let refused = cookie_post(&app, "/v1/logout", &cookie, origin).await;
        assert_error(refused, StatusCode::FORBIDDEN, "forbidden").await;
    }
    // A form post (what a cross-site HTML form can send) is refused too.
    let form = app
        .post("/v1/token/refresh")
        .header("cookie", format!("{COOKIE}={cookie}"))
        .header("origin", ORIGIN)
        .send()
        .await
        .unwrap();
    assert_error(form, StatusCode::FORBIDDEN, "forbidden").await;
    // The cookie is still unspent.
    let ok = cookie_post(&app, "/v1/token/refresh", &cookie, Some(ORIGIN)).await;
    assert_eq!(ok.status(), StatusCode::OK);
}

#[tokio::test]
async fn logout_with_the_cookie_ends_the_session_and_clears_the_cookie() {
    let app = app().await;
    let signup = app.signup("ann@example.com", STRONG_PASSWORD).await;
    let (cookie, _) = refresh_cookie(&signup);
    let body: Value = signup.json().await.unwrap();
    let access = body["access_token"].as_str().unwrap().to_string();

    let response = cookie_post(&app, "/v1/logout", &cookie, Some(ORIGIN)).await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    let (cleared, header) = refresh_cookie(&response);
    assert!(
        cleared.is_empty() && header.contains("Max-Age=0"),
        "{header}"
    );
    assert_eq!(app.me(&access).await.status(), StatusCode::UNAUTHORIZED);
    let after = cookie_post(&app, "/v1/token/refresh", &cookie, Some(ORIGIN)).await;
    assert_error(after, StatusCode::UNAUTHORIZED, "session_revoked").await;
}

#[tokio::test]
async fn bearer_logout_in_cookie_mode_also_clears_the_cookie() {
    let app = app().await;
    let body: Value = app
        .signup("ann@example.com", STRONG_PASSWORD)
        .await
        .json()
        .await
        .unwrap();
    let response = app
        .post("/v1/logout")
        .bearer_auth(body["access_token"].as_str().unwrap())
        .json(&json!({"scope": "global"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    assert!(refresh_cookie(&response).1.contains("Max-Age=0"));
}
