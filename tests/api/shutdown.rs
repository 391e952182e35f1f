//! Graceful shutdown under load, with the real binary: on SIGTERM `/readyz` is 503 at once
//! while requests (on new connections too) are still served for the drain period; then the
//! process stops accepting, finishes what is in flight and exits 0. Every answered request is
//! durable, every other one fails cleanly (a refused or closed connection, never a 5xx), and on
//! PostgreSQL a second instance on the same database serves throughout.

use std::process::{Child, ExitStatus, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::binary::{free_port, sessiond};
use crate::helpers::{Backend, STRONG_PASSWORD, TestDb, backend, became_ready};

const DRAIN_SECS: u64 = 1;
const TIMEOUT_SECS: u64 = 5;

struct Instance {
    child: Child,
    base: String,
}

impl Instance {
    async fn start(db: &TestDb, drain_secs: u64) -> Instance {
        let port = free_port();
        let child = sessiond()
            .env("DATABASE_URL", &db.url)
            .env("PORT", port.to_string())
            .env("SESSIOND__LOG__LEVEL", "warn")
            .env("SESSIOND__SERVER__WORKERS", "2")
            .env(
                "SESSIOND__SERVER__SHUTDOWN_DRAIN_SECS",
                drain_secs.to_string(),
            )
            .env(
                "SESSIOND__SERVER__SHUTDOWN_TIMEOUT_SECS",
                TIMEOUT_SECS.to_string(),
            )
            // Every client here is 127.0.0.1.
            .env("SESSIOND__RATE_LIMITS__CREDENTIALS_PER_MINUTE", "0")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut instance = Instance {
            child,
            base: format!("http://127.0.0.1:{port}"),
        };
        let http = reqwest::Client::new();
        if became_ready(&http, &instance.base).await {
            return instance;
        }
        instance.kill();
        panic!("sessiond did not become ready");
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Polls `/readyz` on new connections until it is 503 (the signal is handled
    /// asynchronously); panics unless that happens within 300 ms.
    async fn unready_at_once(&self, http: &reqwest::Client) -> Value {
        let start = Instant::now();
        loop {
            let ready = http.get(self.url("/readyz")).send().await.unwrap();
            if ready.status() == StatusCode::SERVICE_UNAVAILABLE {
                return ready.json().await.unwrap();
            }
            assert!(
                start.elapsed() < Duration::from_millis(300),
                "/readyz is still 200"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    fn signal(&self, name: &str) {
        let sent = std::process::Command::new("kill")
            .args([&format!("-{name}"), &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(sent.success());
    }

    /// Waits for the process to exit; panics after `limit`.
    async fn exited_within(&mut self, limit: Duration) -> (ExitStatus, Duration) {
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return (status, start.elapsed());
            }
            if start.elapsed() > limit {
                self.kill();
                panic!("sessiond had not exited {limit:?} after the signal");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What one client loop saw.
#[derive(Default)]
struct Tally {
    /// The refresh tokens the client holds from answered requests (the last one per session).
    acknowledged: Vec<String>,
    answered: usize,
    answered_after_signal: usize,
    /// Requests that failed cleanly: refused, reset or closed connections.
    dropped: usize,
    /// Anything else: a 5xx, an unexpected status. Must stay empty.
    wrong: Vec<String>,
}

/// What every client loop shares: whether the signal was sent, and progress counters the test
/// waits on instead of sleeping.
#[derive(Default)]
struct Progress {
    signalled: AtomicBool,
    answered: AtomicUsize,
    dropped: AtomicUsize,
}

async fn post(
    http: &reqwest::Client,
    url: &str,
    body: &Value,
) -> Result<(StatusCode, Value), reqwest::Error> {
    let response = http.post(url).json(body).send().await?;
    let status = response.status();
    Ok((status, response.json().await?))
}

/// Refreshes one session in a loop until `stop`, keeping the last answered refresh token.
async fn refresh_loop(
    base: String,
    token: String,
    stop: Arc<AtomicBool>,
    progress: Arc<Progress>,
) -> Tally {
    let http = reqwest::Client::new();
    let mut tally = Tally::default();
    let mut token = token;
    while !stop.load(Ordering::SeqCst) {
        let after_signal = progress.signalled.load(Ordering::SeqCst);
        let body = json!({ "refresh_token": token });
        match post(&http, &format!("{base}/v1/token/refresh"), &body).await {
            Ok((StatusCode::OK, body)) => {
                token = body["refresh_token"].as_str().unwrap().to_string();
                tally.answered += 1;
                tally.answered_after_signal += usize::from(after_signal);
                progress.answered.fetch_add(1, Ordering::SeqCst);
            }
            Ok((status, body)) => tally.wrong.push(format!("refresh: {status} {body}")),
            Err(_) => {
                tally.dropped += 1;
                progress.dropped.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }
    tally.acknowledged.push(token);
    tally
}

/// Logs in again and again until `stop`, keeping the refresh token of every answered login.
async fn login_loop(
    base: String,
    email: String,
    stop: Arc<AtomicBool>,
    progress: Arc<Progress>,
) -> Tally {
    let http = reqwest::Client::new();
    let mut tally = Tally::default();
    let body = json!({ "email": email, "password": STRONG_PASSWORD });
    while !stop.load(Ordering::SeqCst) {
        let after_signal = progress.signalled.load(Ordering::SeqCst);
        match post(&http, &format!("{base}/v1/login"), &body).await {
            Ok((StatusCode::OK, body)) => {
                tally
                    .acknowledged
                    .push(body["refresh_token"].as_str().unwrap().to_string());
                tally.answered += 1;
                tally.answered_after_signal += usize::from(after_signal);
                progress.answered.fetch_add(1, Ordering::SeqCst);
            }
            Ok((status, body)) => tally.wrong.push(format!("login: {status} {body}")),
            Err(_) => {
                tally.dropped += 1;
                progress.dropped.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }
    tally
}

async fn signup(http: &reqwest::Client, base: &str, email: &str) -> String {
    let (status, body) = post(
        http,
        &format!("{base}/v1/signup"),
        &json!({ "email": email, "password": STRONG_PASSWORD }),
    )
    .await
    .unwrap();
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body["refresh_token"].as_str().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigterm_under_load_drains_finishes_in_flight_requests_and_loses_nothing_acknowledged() {
    // Arrange: refreshes and logins in a loop against A; on PostgreSQL refreshes against B too.
    let db = TestDb::new().await;
    let http = reqwest::Client::new();
    let mut a = Instance::start(&db, DRAIN_SECS).await;
    let mut b = match backend() {
        Backend::Postgres => Some(Instance::start(&db, DRAIN_SECS).await),
        Backend::Sqlite => None,
    };
    let (stop, progress) = (
        Arc::new(AtomicBool::new(false)),
        Arc::new(Progress::default()),
    );
    let mut loops = Vec::new();
    for i in 0..4 {
        let token = signup(&http, &a.base, &format!("refresher-{i}@example.com")).await;
        loops.push(tokio::spawn(refresh_loop(
            a.base.clone(),
            token,
            stop.clone(),
            progress.clone(),
        )));
    }
    for i in 0..2 {
        let email = format!("login-{i}@example.com");
        signup(&http, &a.base, &email).await;
        loops.push(tokio::spawn(login_loop(
            a.base.clone(),
            email,
            stop.clone(),
            progress.clone(),
        )));
    }
    let survivor = match &b {
        Some(b) => {
            let token = signup(&http, &b.base, "on-b@example.com").await;
            Some(tokio::spawn(refresh_loop(
                b.base.clone(),
                token,
                stop.clone(),
                progress.clone(),
            )))
        }
        None => None,
    };
    // Every loop is under way: at least a few answers each.
    let loaded = crate::helpers::within(Duration::from_secs(10), || async {
        progress.answered.load(Ordering::SeqCst) >= 3 * loops.len()
    })
    .await;
    assert!(loaded, "the client loops did not get going");

    // Act
    a.signal("TERM");
    let signal_sent = Instant::now();
    progress.signalled.store(true, Ordering::SeqCst);

    // Assert: not ready at once, but still serving, new connections included.
    let fresh = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    let ready = a.unready_at_once(&fresh).await;
    assert!(
        signal_sent.elapsed() < Duration::from_millis(500),
        "{:?}",
        signal_sent.elapsed()
    );
    assert_eq!(ready["status"], "unavailable");
    let health = fresh.get(a.url("/healthz")).send().await.unwrap();
    assert_eq!(
        health.status(),
        StatusCode::OK,
        "a new connection is served while draining"
    );
    let login = post(
        &fresh,
        &a.url("/v1/login"),
        &json!({"email": "login-0@example.com", "password": STRONG_PASSWORD}),
    )
    .await;
    assert_eq!(
        login.unwrap().0,
        StatusCode::OK,
        "a login is served while draining"
    );

    let (status, took) = a
        .exited_within(Duration::from_secs(DRAIN_SECS + TIMEOUT_SECS + 3))
        .await;
    assert!(status.success(), "exit status {status:?}");
    assert!(
        took >= Duration::from_secs(DRAIN_SECS) - Duration::from_millis(200),
        "it drained first: {took:?}"
    );
    assert!(
        fresh.get(a.url("/healthz")).send().await.is_err(),
        "the listener is closed"
    );
    // The loops see the closed listener before they stop.
    let saw_it_close = crate::helpers::within(Duration::from_secs(5), || async {
        progress.dropped.load(Ordering::SeqCst) > 0
    })
    .await;
    assert!(saw_it_close, "no client loop saw the process go");
    stop.store(true, Ordering::SeqCst);
    let mut tallies = Vec::new();
    for task in loops {
        tallies.push(task.await.unwrap());
    }
    for tally in &tallies {
        assert!(tally.wrong.is_empty(), "{:?}", tally.wrong);
        assert!(tally.answered > 0);
    }
    assert!(
        tallies
            .iter()
            .map(|t| t.answered_after_signal)
            .sum::<usize>()
            > 0,
        "requests were answered during the drain"
    );
    assert!(
        tallies.iter().map(|t| t.dropped).sum::<usize>() > 0,
        "the loops outlived the process"
    );

    // Assert: every acknowledged token works on an instance that kept running (PostgreSQL) or
    // on a restarted one (SQLite): the answered rotations and logins were committed.
    let verifier = match b.take() {
        Some(b) => b,
        None => Instance::start(&db, DRAIN_SECS).await,
    };
    for token in tallies.iter().flat_map(|t| &t.acknowledged) {
        let (status, body) = post(
            &http,
            &verifier.url("/v1/token/refresh"),
            &json!({ "refresh_token": token }),
        )
        .await
        .unwrap();
        assert_eq!(
            status,
            StatusCode::OK,
            "an acknowledged token was lost: {body}"
        );
    }
    if let Some(survivor) = survivor {
        let tally = survivor.await.unwrap();
        assert!(tally.wrong.is_empty(), "{:?}", tally.wrong);
        assert_eq!(tally.dropped, 0, "the other instance kept serving");
        assert!(tally.answered_after_signal > 0);
    }
    let mut verifier = verifier;
    verifier.kill();
}

#[tokio::test]
async fn a_second_signal_ends_the_drain_and_sigint_shuts_down_too() {
    let db = TestDb::new().await;
    // A drain far longer than the test allows.
    let mut app = Instance::start(&db, 60).await;
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();

    app.signal("INT");
    app.unready_at_once(&http).await;
    assert_eq!(
        http.get(app.url("/healthz")).send().await.unwrap().status(),
        StatusCode::OK
    );
    app.signal("TERM");

    let (status, _) = app.exited_within(Duration::from_secs(5)).await;
    assert!(status.success(), "exit status {status:?}");
}
