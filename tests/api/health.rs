//! Health, readiness, request ids and the errors for unknown routes and methods.

use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::{assert_error, spawn_app};
use crate::outage::spawn_app_with_switch;

#[tokio::test]
async fn healthz_and_readyz_answer() {
    let app = spawn_app().await;
    let health = app.get("/healthz").send().await.unwrap();
    assert_eq!(health.status(), StatusCode::OK);
    assert_eq!(health.json::<Value>().await.unwrap()["status"], "ok");
    let ready = app.get("/readyz").send().await.unwrap();
    assert_eq!(ready.status(), StatusCode::OK);
    assert_eq!(ready.json::<Value>().await.unwrap()["status"], "ready");
}

#[tokio::test]
async fn every_response_carries_a_request_id_and_echoes_the_clients() {
    let app = spawn_app().await;
    let generated = app.get("/healthz").send().await.unwrap();
    let id = generated.headers()["x-request-id"].to_str().unwrap();
    assert!(uuid::Uuid::parse_str(id).is_ok(), "{id}");
    let echoed = app
        .get("/nowhere")
        .header("x-request-id", "trace-abc-123")
        .send()
        .await
        .unwrap();
    assert_eq!(echoed.headers()["x-request-id"], "trace-abc-123");
}

#[tokio::test]
async fn unknown_routes_are_404_and_wrong_methods_405_as_json() {
    let app = spawn_app().await;
    let missing = app.get("/v1/nothing-here").send().await.unwrap();
    assert_error(missing, StatusCode::NOT_FOUND, "not_found").await;
    let wrong_method = app.get("/v1/login").send().await.unwrap();
    assert_error(
        wrong_method,
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
    )
    .await;
}

#[tokio::test]
async fn the_app_refuses_to_start_without_its_database() {
    let result = sessiond::startup::Application::build({
        let mut settings = sessiond::config::Settings::defaults();
        settings.database.url =
            secrecy::SecretString::from("postgres://app:hunter2@127.0.0.1:1/none".to_string());
        settings.database.acquire_timeout_ms = 500;
        settings.server.port = 0;
        settings
    })
    .await;
    let message = format!("{:#}", result.err().expect("startup must fail"));
    assert!(message.contains("cannot reach the database"), "{message}");
    assert!(message.contains("127.0.0.1:1"), "{message}");
    assert!(!message.contains("hunter2"), "{message}");
}

#[tokio::test]
async fn a_lost_database_gives_503_and_recovers_by_itself() {
    let (app, mut switch) = spawn_app_with_switch(|s| s.database.acquire_timeout_ms = 500).await;
    switch.cut().await;
    // Readiness comes from a check four times a second: unready within a second.
    assert!(readyz_becomes(&app, StatusCode::SERVICE_UNAVAILABLE).await);
    let ready = app.get("/readyz").send().await.unwrap();
    assert_eq!(
        ready.json::<Value>().await.unwrap()["status"],
        "unavailable"
    );
    let signup = app
        .signup("ann@example.com", crate::helpers::STRONG_PASSWORD)
        .await;
    assert!(signup.headers().contains_key("retry-after"));
    assert_error(signup, StatusCode::SERVICE_UNAVAILABLE, "unavailable").await;
    assert_eq!(
        app.get("/healthz").send().await.unwrap().status(),
        StatusCode::OK
    );

    switch.restore().await;
    assert!(readyz_becomes(&app, StatusCode::OK).await);
    let signup = app
        .signup("ann@example.com", crate::helpers::STRONG_PASSWORD)
        .await;
    assert_eq!(signup.status(), StatusCode::CREATED);
}

/// Makes the test database refuse new connections and ends the ones open (PostgreSQL), or holds
/// its write lock (SQLite, which has no connection to refuse), until `end` is called.
enum Refusal {
    Postgres(String),
    Sqlite(crate::outage::Switch),
}

async fn pg_admin(sql: String) {
    use sqlx::Connection;
    let admin = crate::helpers::pg_admin_url();
    let mut conn = sqlx::postgres::PgConnection::connect(&admin).await.unwrap();
    sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
        .execute(&mut conn)
        .await
        .unwrap();
}

/// How many connections the database `name` has.
async fn pg_backends(name: &str) -> i64 {
    use sqlx::Connection;
    let admin = crate::helpers::pg_admin_url();
    let mut conn = sqlx::postgres::PgConnection::connect(&admin).await.unwrap();
    sqlx::query_scalar("select count(*) from pg_stat_activity where datname = $1")
        .bind(name)
        .fetch_one(&mut conn)
        .await
        .unwrap()
}

impl Refusal {
    async fn start(app: &crate::helpers::TestApp) -> Refusal {
        match crate::helpers::backend() {
            crate::helpers::Backend::Postgres => {
                let url = url::Url::parse(&app.db.url).unwrap();
                let name = url.path().trim_start_matches('/').to_string();
                pg_admin(format!("alter database \"{name}\" allow_connections false")).await;
                // A connection being opened while the first sweep ran can slip in before the
                // refusal took effect: sweep until none is left, or the instance still reaches
                // its database (and rightly keeps vouching).
                for _ in 0..50 {
                    pg_admin(format!(
                        "select pg_terminate_backend(pid) from pg_stat_activity \
                         where datname = '{name}' and pid <> pg_backend_pid()"
                    ))
                    .await;
                    if pg_backends(&name).await == 0 {
                        break;
                    }
                    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                }
                Refusal::Postgres(name)
            }
            crate::helpers::Backend::Sqlite => {
                let mut switch = crate::outage::Switch::Sqlite {
                    url: app.db.url.clone(),
                    holder: None,
                };
                switch.cut().await;
                Refusal::Sqlite(switch)
            }
        }
    }

    async fn end(self) {
        match self {
            Refusal::Postgres(name) => {
                pg_admin(format!("alter database \"{name}\" allow_connections true")).await
            }
            Refusal::Sqlite(mut switch) => switch.restore().await,
        }
    }
}

#[tokio::test]
async fn a_database_refusing_connections_is_503_with_retry_after_never_500() {
    // Arrange
    let app = crate::helpers::spawn_app_with(|s| {
        crate::service::with_test_keys(s);
        s.database.acquire_timeout_ms = 1000;
    })
    .await;
    let session = app.new_user_with_email("ann@example.com").await;

    // Act
    let refusal = Refusal::start(&app).await;
    let login = app
        .login("ann@example.com", crate::helpers::STRONG_PASSWORD)
        .await;
    let introspect = || {
        crate::service::introspect(
            &app,
            Some(crate::service::INTROSPECT_KEY),
            &session.access_token,
        )
    };
    // Knowledge of ended sessions counts as current for a second after its last proof, so
    // introspection may vouch for up to that second; it must then refuse with 503.
    let unavailable = crate::helpers::within(std::time::Duration::from_millis(1500), || async {
        let response = introspect().await;
        response.status() == StatusCode::SERVICE_UNAVAILABLE
            && response.headers().contains_key("retry-after")
    })
    .await;
    let introspection = introspect().await;

    // Assert: login cannot write, so it is 503; introspection never claims what it cannot know.
    assert!(login.headers().contains_key("retry-after"));
    assert_error(login, StatusCode::SERVICE_UNAVAILABLE, "unavailable").await;
    match crate::helpers::backend() {
        crate::helpers::Backend::Postgres => {
            assert!(
                unavailable,
                "introspection did not turn 503 with Retry-After"
            );
            assert_error(
                introspection,
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
            )
            .await;
        }
        // SQLite readers are not blocked by a writer: the session can still be read, and is live.
        crate::helpers::Backend::Sqlite => {
            assert!(!unavailable, "a readable database should still vouch");
            crate::service::assert_active(introspection).await;
        }
    }
    assert!(readyz_becomes(&app, StatusCode::SERVICE_UNAVAILABLE).await);

    refusal.end().await;
    let login = app
        .login("ann@example.com", crate::helpers::STRONG_PASSWORD)
        .await;
    assert_eq!(login.status(), StatusCode::OK);
}

#[tokio::test]
async fn head_answers_like_get_and_405_names_the_allowed_methods() {
    let app = crate::helpers::spawn_app().await;
    let head = app.client.head(app.url("/healthz")).send().await.unwrap();
    assert_eq!(head.status(), StatusCode::OK);
    assert!(head.bytes().await.unwrap().is_empty());
    for (method, path, allow) in [
        (reqwest::Method::PUT, "/v1/me", "GET, DELETE, HEAD"),
        (reqwest::Method::GET, "/v1/login", "POST"),
        (reqwest::Method::DELETE, "/healthz", "GET, HEAD"),
    ] {
        let response = app
            .client
            .request(method, app.url(path))
            .send()
            .await
            .unwrap();
        assert_eq!(response.headers()["allow"], allow, "{path}");
        assert_error(
            response,
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
        )
        .await;
    }
}

/// True once `/readyz` answers `status`, within a second and a half (the check runs four times
/// a second and a success vouches for one second).
async fn readyz_becomes(app: &crate::helpers::TestApp, status: StatusCode) -> bool {
    crate::helpers::within(std::time::Duration::from_millis(1500), || async {
        app.get("/readyz").send().await.unwrap().status() == status
    })
    .await
}

#[tokio::test]
async fn readiness_probes_cost_no_database_work_each() {
    // Arrange
    let app = crate::helpers::spawn_app().await;
    let checks = |text: String| -> i64 {
        text.lines()
            .find_map(|l| l.strip_prefix("sessiond_readiness_checks_total "))
            .and_then(|v| v.trim().parse().ok())
            .expect("the readiness check counter")
    };
    let before = checks(app.metrics_text().await);

    // Act: a burst of probes.
    for _ in 0..100 {
        assert_eq!(
            app.get("/readyz").send().await.unwrap().status(),
            StatusCode::OK
        );
    }

    // Assert: the database was checked by the periodic task, not once per probe.
    let after = checks(app.metrics_text().await);
    assert!(after - before < 100, "{before} -> {after}");
}
