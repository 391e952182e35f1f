use std::path::PathBuf;
use std::sync::Once;
use std::time::{Duration, Instant};

use actix_web::dev::ServerHandle;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::header::USER_AGENT;
use reqwest::{RequestBuilder, Response, StatusCode};
use secrecy::SecretString;
use serde_json::{Value, json};
use sessiond::config::Settings;
use sessiond::credentials::tokens::AccessTokens;
use sessiond::credentials::tokens::access::Subject;
use sessiond::services::Services;
use sessiond::startup::Application;
use sessiond::startup::compose::Core;
use sessiond::store::Store;
use sqlx::Connection;

pub const STRONG_PASSWORD: &str = "correct horse battery staple";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

pub fn backend() -> Backend {
    match std::env::var("SESSIOND_TEST_DB").as_deref() {
        Ok("postgres") => Backend::Postgres,
        Ok("sqlite") | Err(_) => Backend::Sqlite,
        Ok(other) => panic!("SESSIOND_TEST_DB must be sqlite or postgres, not {other}"),
    }
}

/// The PostgreSQL server's maintenance database, where test databases are created and dropped.
pub fn pg_admin_url() -> String {
    std::env::var("SESSIOND_TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// A fresh database for one test, removed when dropped.
pub struct TestDb {
    pub url: String,
    cleanup: Cleanup,
}

enum Cleanup {
    Dir(PathBuf),
    PgDatabase(String),
}

impl TestDb {
    pub async fn new() -> TestDb {
        let unique = uuid::Uuid::new_v4().simple().to_string();
        match backend() {
            Backend::Sqlite => {
                let dir = std::env::temp_dir().join(format!("sessiond-test-{unique}"));
                TestDb {
                    url: format!("sqlite://{}/sessiond.db", dir.display()),
                    cleanup: Cleanup::Dir(dir),
                }
            }
            Backend::Postgres => {
                let name = format!("sessiond_test_{unique}");
                let admin = pg_admin_url();
                let template = pg_template(&admin).await;
                let mut conn = sqlx::postgres::PgConnection::connect(&admin)
                    .await
                    .unwrap_or_else(|e| panic!("PostgreSQL at {admin} must answer: {e}"));
                let create = format!("create database \"{name}\" template \"{template}\"");
                sqlx::raw_sql(sqlx::AssertSqlSafe(create))
                    .execute(&mut conn)
                    .await
                    .expect("create test database");
                let mut url = url::Url::parse(&admin).expect("SESSIOND_TEST_PG_URL is a URL");
                url.set_path(&name);
                TestDb {
                    url: url.to_string(),
                    cleanup: Cleanup::PgDatabase(name),
                }
            }
        }
    }
}

/// A migrated PostgreSQL database every test database is copied from (`CREATE DATABASE …
/// TEMPLATE`), so a test starts on the current schema without running the migrations (about
/// half a second each). Named after the migrations' text: a changed migration makes a new one.
async fn pg_template(admin: &str) -> String {
    static TEMPLATE: tokio::sync::OnceCell<String> = tokio::sync::OnceCell::const_new();
    TEMPLATE
        .get_or_init(|| make_pg_template(admin.to_string()))
        .await
        .clone()
}

async fn make_pg_template(admin: String) -> String {
    use std::hash::{Hash, Hasher};
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations/postgres");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("migrations/postgres")
        .map(|e| e.expect("a migration").path())
        .collect();
    files.sort();
    let mut hasher = std::hash::DefaultHasher::new();
    for file in &files {
        std::fs::read(file).expect("a migration").hash(&mut hasher);
    }
    let name = format!("sessiond_template_{:016x}", hasher.finish());
    let mut conn = sqlx::postgres::PgConnection::connect(&admin)
        .await
        .unwrap_or_else(|e| panic!("PostgreSQL at {admin} must answer: {e}"));
    // One builder at a time, across test processes too.
    sqlx::raw_sql("select pg_advisory_lock(7462331)")
        .execute(&mut conn)
        .await
        .expect("template lock");
    let exists: Option<i32> = sqlx::query_scalar("select 1 from pg_database where datname = $1")
        .bind(&name)
        .fetch_optional(&mut conn)
        .await
        .expect("look for the template");
    if exists.is_none() {
        let building = format!("{name}_building");
        for sql in [
            format!("drop database if exists \"{building}\" with (force)"),
            format!("create database \"{building}\""),
        ] {
            sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
                .execute(&mut conn)
                .await
                .expect("create the template");
        }
        let mut url = url::Url::parse(&admin).expect("SESSIOND_TEST_PG_URL is a URL");
        url.set_path(&building);
        let mut target = sqlx::postgres::PgConnection::connect(url.as_str())
            .await
            .expect("connect to the template");
        sqlx::migrate!("./migrations/postgres")
            .run(&mut target)
            .await
            .expect("migrate the template");
        target.close().await.expect("close the template");
        let rename = format!("alter database \"{building}\" rename to \"{name}\"");
        sqlx::raw_sql(sqlx::AssertSqlSafe(rename))
            .execute(&mut conn)
            .await
            .expect("name the template");
    }
    sqlx::raw_sql("select pg_advisory_unlock(7462331)")
        .execute(&mut conn)
        .await
        .expect("template unlock");
    name
}

impl Drop for TestDb {
    fn drop(&mut self) {
        match &self.cleanup {
            Cleanup::Dir(dir) => {
                let _ = std::fs::remove_dir_all(dir);
            }
            Cleanup::PgDatabase(name) => {
                let name = name.clone();
                // Drop runs inside the test's runtime; use a thread with its own runtime.
                let _ = std::thread::spawn(move || {
                    let rt = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .unwrap();
                    rt.block_on(async {
                        if let Ok(mut conn) =
                            sqlx::postgres::PgConnection::connect(&pg_admin_url()).await
                        {
                            let sql = format!("drop database if exists \"{name}\" with (force)");
                            let _ = sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
                                .execute(&mut conn)
                                .await;
                        }
                    });
                })
                .join();
            }
        }
    }
}

pub struct TestApp {
    pub address: String,
    pub client: reqwest::Client,
    /// The app's services, for tests that call an operation directly.
    pub services: Services,
    /// The core parts the app was built from, for tests that look inside.
    pub core: std::sync::Arc<Core>,
    /// The app's database, opened separately, for tests that read or write it directly.
    pub store: Store,
    handle: ServerHandle,
    // Dropped last: the database outlives the server using it.
    pub db: std::sync::Arc<TestDb>,
}

pub fn test_settings(db: &TestDb) -> Settings {
    let mut settings = Settings::defaults();
    settings.database.url = SecretString::from(db.url.clone());
    settings.database.max_connections = 8;
    settings.server.host = "127.0.0.1".into();
    settings.server.port = 0;
    settings.server.workers = 1;
    // Every test client is 127.0.0.1; tests of the limits themselves set their own.
    settings.rate_limits.credentials_per_minute = 0;
    settings.rate_limits.guests_per_minute = 0;
    settings.throttle.client_failures = 0;
    // Cheap hashes: the suite tests behaviour, not argon2's cost. Tests of the hashing queue
    // itself put the production parameters back with `production_hashing`.
    settings.passwords.argon2_memory_kib = 1024;
    settings.passwords.argon2_iterations = 1;
    settings
}

/// The default (production) argon2 parameters, for tests whose subject is the hashing queue:
/// they need each hash to take as long as it does in production.
pub fn production_hashing(settings: &mut Settings) {
    let defaults = Settings::defaults().passwords;
    settings.passwords.argon2_memory_kib = defaults.argon2_memory_kib;
    settings.passwords.argon2_iterations = defaults.argon2_iterations;
}

fn init_once() {
    static INIT: Once = Once::new();
    INIT.call_once(|| {
        sessiond::install_crypto_provider();
        if std::env::var("TEST_LOG").is_ok() {
            let mut log = Settings::defaults().log;
            log.format = "pretty".into();
            log.level = "debug".into();
            sessiond::observability::telemetry::init(&log);
        }
    });
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

pub async fn spawn_app_with(customize: impl FnOnce(&mut Settings)) -> TestApp {
    let db = std::sync::Arc::new(TestDb::new().await);
    spawn_on(db, customize).await
}

/// Starts an app on an existing database (a restart, or a second instance).
pub async fn spawn_on(
    db: std::sync::Arc<TestDb>,
    customize: impl FnOnce(&mut Settings),
) -> TestApp {
    init_once();
    let mut settings = test_settings(&db);
    customize(&mut settings);
    let app = Application::build(settings).await.expect("the app starts");
    let address = format!("http://127.0.0.1:{}", app.port());
    let handle = app.handle();
    let services = app.state().services.clone();
    let core = app.core();
    let store = Store::connect(&core.settings.database)
        .await
        .expect("the test reaches the app's database");
    tokio::spawn(app.run_until_stopped());
    TestApp {
        address,
        client: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap(),
        services,
        core,
        store,
        handle,
        db,
    }
}

/// A signed-in user as the tests see it.
pub struct Session {
    pub access_token: String,
    pub refresh_token: String,
    pub session_id: String,
    pub user_id: String,
    pub body: Value,
}

impl Session {
    pub fn from_body(body: Value) -> Session {
        let text = |k: &str| body[k].as_str().unwrap_or_default().to_string();
        Session {
            access_token: text("access_token"),
            refresh_token: text("refresh_token"),
            session_id: text("session_id"),
            user_id: body["user"]["id"].as_str().unwrap_or_default().to_string(),
            body,
        }
    }
}

impl TestApp {
    /// Moves the app's clock forward: what a test of lifetimes and windows does instead of
    /// sleeping through them.
    pub fn advance_clock(&self, secs: i64) {
        self.core.clock.advance(secs);
    }
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    pub fn post(&self, path: &str) -> RequestBuilder {
        self.client.post(self.url(path))
    }

    /// `POST path` with `body` as JSON, from a client naming itself `user_agent`.
    pub async fn post_json_as(&self, path: &str, user_agent: &str, body: &Value) -> Response {
        self.post(path)
            .header(USER_AGENT, user_agent)
            .json(body)
            .send()
            .await
            .unwrap()
    }

    pub fn get(&self, path: &str) -> RequestBuilder {
        self.client.get(self.url(path))
    }

    pub async fn post_json(&self, path: &str, body: &Value) -> Response {
        self.post(path)
            .json(body)
            .send()
            .await
            .expect("request sent")
    }

    pub async fn signup(&self, email: &str, password: &str) -> Response {
        self.post_json("/v1/signup", &json!({"email": email, "password": password}))
            .await
    }

    pub async fn login(&self, email: &str, password: &str) -> Response {
        self.post_json("/v1/login", &json!({"email": email, "password": password}))
            .await
    }

    /// Signs up a fresh user and returns the session; panics unless it is 201.
    pub async fn new_user(&self) -> Session {
        self.new_user_with_email(&fresh_email()).await
    }

    pub async fn new_user_with_email(&self, email: &str) -> Session {
        session_of(
            self.signup(email, STRONG_PASSWORD).await,
            StatusCode::CREATED,
        )
        .await
    }

    /// Signs up `email` with [`STRONG_PASSWORD`] from a client naming itself `user_agent`;
    /// panics unless it is 201.
    pub async fn new_user_as(&self, user_agent: &str, email: &str) -> Session {
        let body = json!({"email": email, "password": STRONG_PASSWORD});
        let response = self.post_json_as("/v1/signup", user_agent, &body).await;
        session_of(response, StatusCode::CREATED).await
    }

    /// Logs in and returns the new session; panics unless it is 200.
    pub async fn login_ok(&self, email: &str, password: &str) -> Session {
        session_of(self.login(email, password).await, StatusCode::OK).await
    }

    /// Logs in from a client naming itself `user_agent`; panics unless it is 200.
    pub async fn login_ok_as(&self, user_agent: &str, email: &str, password: &str) -> Session {
        let body = json!({"email": email, "password": password});
        let response = self.post_json_as("/v1/login", user_agent, &body).await;
        session_of(response, StatusCode::OK).await
    }

    /// `POST /v1/login` as if through a trusted proxy that saw `forwarded_for`.
    pub async fn login_from(&self, forwarded_for: &str, email: &str, password: &str) -> Response {
        self.post("/v1/login")
            .header("x-forwarded-for", forwarded_for)
            .json(&json!({"email": email, "password": password}))
            .send()
            .await
            .unwrap()
    }

    pub async fn guest(&self) -> Session {
        let response = self.post("/v1/guest").send().await.unwrap();
        assert_eq!(response.status(), StatusCode::CREATED);
        Session::from_body(response.json().await.unwrap())
    }

    pub async fn me(&self, access_token: &str) -> Response {
        self.get("/v1/me")
            .bearer_auth(access_token)
            .send()
            .await
            .unwrap()
    }

    pub async fn logout(&self, access_token: &str, scope: Option<&str>) -> Response {
        let request = self.post("/v1/logout").bearer_auth(access_token);
        let request = match scope {
            Some(scope) => request.json(&json!({ "scope": scope })),
            None => request,
        };
        request.send().await.unwrap()
    }

    pub async fn refresh(&self, refresh_token: &str) -> Response {
        self.post_json(
            "/v1/token/refresh",
            &json!({ "refresh_token": refresh_token }),
        )
        .await
    }

    /// Refreshes and returns the rotated session; panics unless it is 200.
    pub async fn refresh_ok(&self, refresh_token: &str) -> Session {
        session_of(self.refresh(refresh_token).await, StatusCode::OK).await
    }

    /// Refreshes from a client naming itself `user_agent`; panics unless it is 200.
    pub async fn refresh_ok_as(&self, user_agent: &str, refresh_token: &str) -> Session {
        let body = json!({ "refresh_token": refresh_token });
        let response = self
            .post_json_as("/v1/token/refresh", user_agent, &body)
            .await;
        session_of(response, StatusCode::OK).await
    }

    /// `POST /v1/password` with the bearer `access_token` and `body` as JSON.
    pub async fn change_password(&self, access_token: &str, body: &Value) -> Response {
        self.post("/v1/password")
            .bearer_auth(access_token)
            .json(body)
            .send()
            .await
            .unwrap()
    }

    /// `GET /v1/sessions` with the bearer `access_token`.
    pub async fn list_sessions(&self, access_token: &str) -> Response {
        self.get("/v1/sessions")
            .bearer_auth(access_token)
            .send()
            .await
            .unwrap()
    }

    /// The caller's sessions; panics unless the listing is 200 with a `sessions` array.
    pub async fn sessions_of(&self, access_token: &str) -> Vec<Value> {
        let response = self.list_sessions(access_token).await;
        assert_eq!(response.status(), StatusCode::OK);
        let body: Value = response.json().await.unwrap();
        body["sessions"]
            .as_array()
            .unwrap_or_else(|| panic!("no sessions array: {body}"))
            .clone()
    }

    /// `DELETE /v1/sessions/{id}` with the bearer `access_token`.
    pub async fn delete_session(&self, access_token: &str, id: &str) -> Response {
        self.client
            .delete(self.url(&format!("/v1/sessions/{id}")))
            .bearer_auth(access_token)
            .send()
            .await
            .unwrap()
    }

    /// `POST /v1/bridge`: exchanges `provider`'s `token` for a session.
    pub async fn bridge(&self, provider: &str, token: &str) -> Response {
        self.post_json(
            "/v1/bridge",
            &json!({ "provider": provider, "token": token }),
        )
        .await
    }

    /// `GET /.well-known/jwks.json`, read as JSON whatever the status.
    pub async fn jwks(&self) -> Value {
        self.get("/.well-known/jwks.json")
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// `GET /metrics` without credentials, read as text whatever the status.
    pub async fn metrics_text(&self) -> String {
        self.get("/metrics")
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    /// Stops the server (not the database) and waits until it has stopped.
    pub async fn stop(&self) {
        self.handle.stop(true).await;
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        // Ask the server to stop without waiting; the database is dropped afterwards.
        drop(self.handle.stop(false));
    }
}

/// Checks a token response's status (panics if it is not `status`) and reads its session.
async fn session_of(response: Response, status: StatusCode) -> Session {
    assert_eq!(response.status(), status, "unexpected status");
    Session::from_body(response.json().await.unwrap())
}

/// A new address at example.com that no other user has.
pub fn fresh_email() -> String {
    format!("user-{}@example.com", uuid::Uuid::new_v4().simple())
}

/// How many users the app's database holds.
pub async fn count_users(app: &TestApp) -> i64 {
    app.store.count_users().await.unwrap()
}

/// Runs `check` every 20 ms until it is true; false if it is still false once `limit` has passed.
pub async fn within<F, Fut>(limit: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    while start.elapsed() < limit {
        if check().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    false
}

/// The system clock's time: what an app reads while no test has moved its clock.
pub fn system_now() -> i64 {
    sessiond::clock::Clock::system().now()
}

/// Polls `/v1/me` on `app` with `token` until it is refused; panics if that takes over 1 s.
pub async fn refused_within_a_second(app: &TestApp, token: &str) {
    let refused = within(Duration::from_secs(1), move || async move {
        app.me(token).await.status() == StatusCode::UNAUTHORIZED
    })
    .await;
    assert!(refused, "a token is still accepted after 1 s");
}

/// On PostgreSQL, waits until the app hears its own heartbeats (and so trusts its session
/// snapshots for long); panics after 5 s. SQLite has no listener: returns at once.
pub async fn until_listening(app: &TestApp) {
    if backend() != Backend::Postgres {
        return;
    }
    let heard = within(Duration::from_secs(5), move || async move {
        app.core.gate.is_listening()
    })
    .await;
    assert!(heard, "the announcement listener never heard its heartbeat");
}

/// Polls `{base}/readyz` every 25 ms, at most 200 times, until it is 200; false if it never was.
pub async fn became_ready(http: &reqwest::Client, base: &str) -> bool {
    for _ in 0..200 {
        let ready = http.get(format!("{base}/readyz")).send().await;
        if ready.is_ok_and(|r| r.status() == StatusCode::OK) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    false
}

/// Decodes one base64url part of a JWT as JSON.
fn decode_part(part: &str) -> Value {
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
}

/// The header of a JWT, unverified.
pub fn header_of(token: &str) -> Value {
    decode_part(token.split('.').next().expect("a header"))
}

/// The payload of a JWT, unverified.
pub fn claims_of(token: &str) -> Value {
    decode_part(token.split('.').nth(1).expect("a payload"))
}

/// The `kid` in a JWT's header; panics if there is none.
pub fn kid_of(token: &str) -> String {
    header_of(token)["kid"].as_str().expect("a kid").to_string()
}

/// `session` as the subject of an access token: a password login without an email claim.
pub fn subject(session: &Session) -> Subject<'_> {
    Subject {
        user_id: &session.user_id,
        session_id: &session.session_id,
        is_guest: false,
        amr: vec!["pwd".into()],
        email: None,
        email_verified: false,
        auth_time: system_now(),
        session_ends_at: i64::MAX,
    }
}

/// An access-token issuer with the app's own signing keys but `issuer` and `audience` instead.
pub fn access_tokens_for(app: &TestApp, issuer: &str, audience: &str) -> AccessTokens {
    AccessTokens::new(
        app.core.tokens.keys().clone(),
        sessiond::clock::Clock::system(),
        issuer.into(),
        audience.into(),
        900,
        16,
    )
}

/// Signs `claims` as an access token (ES256, `typ` at+jwt, `kid`) with a PKCS#8 P-256 key.
pub fn sign_access_token(claims: &Value, kid: &str, private_der: &[u8]) -> String {
    let mut header = Header::new(Algorithm::ES256);
    header.typ = Some("at+jwt".into());
    header.kid = Some(kid.to_string());
    jsonwebtoken::encode(&header, claims, &EncodingKey::from_ec_der(private_der)).unwrap()
}

/// The access token's own `kid` and claims, signed with a new key the service never had.
pub fn signed_by_a_foreign_key(access_token: &str) -> String {
    let foreign = sessiond::credentials::tokens::keys::generate_key(0).unwrap();
    sign_access_token(
        &claims_of(access_token),
        &kid_of(access_token),
        &foreign.private_der,
    )
}

/// A plain connection to the test database, outside the service (as an operator's script).
pub async fn raw_connection(url: &str) -> sqlx::AnyConnection {
    sqlx::any::install_default_drivers();
    sqlx::AnyConnection::connect(url)
        .await
        .expect("the test database answers")
}

/// A well-formed refresh token (43 base64url characters, from the service's own generator)
/// that was never issued.
pub fn unknown_refresh_token() -> String {
    use secrecy::ExposeSecret;
    sessiond::credentials::tokens::opaque::generate()
        .expose_secret()
        .to_string()
}

/// Reads an error response and checks it has the contract's shape and the expected code.
pub async fn assert_error(response: Response, status: StatusCode, code: &str) -> Value {
    assert_eq!(response.status(), status, "unexpected status");
    let body: Value = response.json().await.expect("error bodies are JSON");
    assert_eq!(body["error"], code, "{body}");
    assert!(body["error_description"].is_string(), "{body}");
    assert_eq!(body.as_object().unwrap().len(), 2, "{body}");
    body
}
