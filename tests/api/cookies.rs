//! Cookie mode: the refresh token lives in an HttpOnly cookie, and cookie-authenticated
//! refresh and logout pass the Origin and content-type checks or get 403.

use reqwest::StatusCode;
use reqwest::header::{CONTENT_TYPE, SET_COOKIE};
use serde_json::{Value, json};

use crate::helpers::{STRONG_PASSWORD, TestApp, assert_error, count_users, spawn_app_with};

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

/// Signs up from the allowed origin, as the browser app does.
async fn signup(app: &TestApp) -> reqwest::Response {
    app.post("/v1/signup")
        .header("origin", ORIGIN)
        .json(&json!({"email": "ann@example.com", "password": STRONG_PASSWORD}))
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn token_responses_set_an_httponly_cookie_and_leave_the_token_out_of_json() {
    let app = app().await;
    let response = signup(&app).await;
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
    let (cookie, _) = refresh_cookie(&signup(&app).await);
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
    let (cookie, _) = refresh_cookie(&signup(&app).await);
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
    let signup = signup(&app).await;
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
    let body: Value = signup(&app).await.json().await.unwrap();
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

#[tokio::test]
async fn a_spent_cookie_or_one_of_an_ended_session_cannot_log_anybody_out() {
    // Arrange: C1 is spent by a refresh (C2 is the live one).
    let app = app().await;
    let (spent, _) = refresh_cookie(&signup(&app).await);
    let rotated = cookie_post(&app, "/v1/token/refresh", &spent, Some(ORIGIN)).await;
    assert_eq!(rotated.status(), StatusCode::OK);
    let (live, _) = refresh_cookie(&rotated);
    let access: Value = rotated.json().await.unwrap();
    let access = access["access_token"].as_str().unwrap().to_string();

    // Act + Assert: the spent cookie names no session any more.
    let refused = cookie_post(&app, "/v1/logout", &spent, Some(ORIGIN)).await;
    assert_error(refused, StatusCode::UNAUTHORIZED, "invalid_token").await;
    assert_eq!(app.me(&access).await.status(), StatusCode::OK);

    // Once the session has ended, even its last cookie cannot end the user's other sessions.
    let other: Value = app
        .post("/v1/login")
        .header("origin", ORIGIN)
        .json(&json!({"email": "ann@example.com", "password": STRONG_PASSWORD}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let other = other["access_token"].as_str().unwrap().to_string();
    let response = app
        .post("/v1/logout")
        .bearer_auth(&access)
        .json(&json!({"scope": "local"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    let global = app
        .post("/v1/logout")
        .header("cookie", format!("{COOKIE}={live}"))
        .header("origin", ORIGIN)
        .json(&json!({"scope": "global"}))
        .send()
        .await
        .unwrap();
    assert_error(global, StatusCode::UNAUTHORIZED, "invalid_token").await;
    assert_eq!(app.me(&other).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_cross_site_form_cannot_plant_or_replace_the_refresh_cookie() {
    let app = app().await;
    let forms = [
        ("application/x-www-form-urlencoded", ""),
        ("text/plain", ""),
        ("multipart/form-data; boundary=x", "--x--\r\n"),
    ];
    for path in ["/v1/guest", "/v1/signup", "/v1/login"] {
        for (content_type, body) in forms {
            for origin in [Some("https://evil.example"), Some(ORIGIN), None] {
                let mut request = app.post(path).header(CONTENT_TYPE, content_type).body(body);
                if let Some(origin) = origin {
                    request = request.header("origin", origin);
                }
                let response = request.send().await.unwrap();
                let case = format!("{path} {content_type} {origin:?}");
                assert!(
                    response.headers().get(SET_COOKIE).is_none(),
                    "{case} set a cookie"
                );
                assert_eq!(response.status(), StatusCode::FORBIDDEN, "{case}");
            }
        }
        // JSON from a foreign origin (a cross-site fetch without CORS consent) is refused too.
        let response = app
            .post(path)
            .header("origin", "https://evil.example")
            .json(&json!({"email": "ann@example.com", "password": STRONG_PASSWORD}))
            .send()
            .await
            .unwrap();
        assert!(response.headers().get(SET_COOKIE).is_none());
        assert_error(response, StatusCode::FORBIDDEN, "forbidden").await;
    }
    assert_eq!(count_users(&app).await, 0);

    // The app's own origin with JSON still gets a guest and its cookie.
    let guest = app
        .post("/v1/guest")
        .header("origin", ORIGIN)
        .header(CONTENT_TYPE, "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(guest.status(), StatusCode::CREATED);
    refresh_cookie(&guest);
    assert_eq!(count_users(&app).await, 1);
}
