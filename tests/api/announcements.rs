//! Ended sessions reach every instance within a second, whoever ended them: the announcement
//! commits with the revocation (so a revocation written by the CLI or by hand is announced too),
//! and an instance whose listener silently stops hearing (a black-holed connection) notices
//! within a heartbeat and stops trusting its memory.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use secrecy::SecretString;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::helpers::{
    Backend, TestApp, backend, refused_within_a_second, spawn_app_with, spawn_on, until_listening,
};
use crate::service::{INTROSPECT_KEY, introspect, with_test_keys};

#[tokio::test]
async fn a_revocation_written_outside_the_service_is_seen_within_a_second() {
    // Arrange: the session is cached as live.
    let app = spawn_app_with(|_| {}).await;
    until_listening(&app).await;
    let session = app.new_user().await;
    assert_eq!(app.me(&session.access_token).await.status(), StatusCode::OK);
    assert_eq!(app.me(&session.access_token).await.status(), StatusCode::OK);

    // Act: an operator revokes it with plain SQL, as a script or the CLI would.
    let url = &app.db.url;
    let sql = "update user_sessions set revoked_at = 1, revoked_reason = 'admin' where id = $1";
    let mut conn = crate::helpers::raw_connection(url).await;
    sqlx::query(sql)
        .bind(&session.session_id)
        .execute(&mut conn)
        .await
        .unwrap();

    // Assert
    refused_within_a_second(&app, &session.access_token).await;
}

/// A TCP relay to PostgreSQL that can black-hole traffic: connections stay open, bytes stop
/// flowing both ways, as with an idle NAT drop or a hung proxy.
struct BlackHole {
    holes: Arc<AtomicBool>,
}

impl BlackHole {
    async fn start() -> (BlackHole, u16) {
        let holes = Arc::new(AtomicBool::new(false));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let flag = holes.clone();
        tokio::spawn(async move {
            while let Ok((inbound, _)) = listener.accept().await {
                let flag = flag.clone();
                tokio::spawn(async move {
                    while flag.load(Ordering::SeqCst) {
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                    let Ok(outbound) = TcpStream::connect("127.0.0.1:5432").await else {
                        return;
                    };
                    let (in_read, in_write) = inbound.into_split();
                    let (out_read, out_write) = outbound.into_split();
                    tokio::spawn(pump(in_read, out_write, flag.clone()));
                    pump(out_read, in_write, flag).await;
                });
            }
        });
        (BlackHole { holes }, port)
    }

    fn swallow(&self, on: bool) {
        self.holes.store(on, Ordering::SeqCst);
    }
}

/// Copies bytes while the hole is closed; while it is open, holds them (the socket stays up).
async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    holes: Arc<AtomicBool>,
) {
    let mut buffer = vec![0u8; 16 * 1024];
    loop {
        let n = match from.read(&mut buffer).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        while holes.load(Ordering::SeqCst) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        if to.write_all(&buffer[..n]).await.is_err() {
            return;
        }
    }
}

/// What instance B answers for a token within `limit` (a hung request counts as no answer).
async fn introspection_within(app: &TestApp, token: &str, limit: Duration) -> Option<Value> {
    let response = tokio::time::timeout(limit, introspect(app, Some(INTROSPECT_KEY), token)).await;
    match response {
        Ok(response) if response.status() == StatusCode::OK => Some(response.json().await.unwrap()),
        Ok(response) => {
            assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
            None
        }
        Err(_) => None,
    }
}

#[tokio::test]
async fn on_postgres_an_instance_whose_listener_is_black_holed_never_vouches_for_a_revoked_session()
{
    if backend() != Backend::Postgres {
        // PostgreSQL only (run by the PostgreSQL half of the suite): one SQLite file has one
        // instance and no listener to lose; its snapshots always live 0.5 s (test above).
        return;
    }
    // Arrange: A talks to PostgreSQL directly, B through the black hole.
    let a = spawn_app_with(with_test_keys).await;
    let (hole, port) = BlackHole::start().await;
    let mut url = url::Url::parse(&a.db.url).unwrap();
    url.set_port(Some(port)).unwrap();
    let b = spawn_on(a.db.clone(), |s| {
        with_test_keys(s);
        s.database.url = SecretString::from(url.to_string());
        s.database.acquire_timeout_ms = 500;
    })
    .await;
    until_listening(&b).await;
    let session = a.new_user().await;
    let before = introspection_within(&b, &session.access_token, Duration::from_secs(2)).await;
    assert_eq!(before.unwrap()["active"], true);

    // Act: B's connections go silent, then A revokes the session.
    hole.swallow(true);
    assert_eq!(
        a.logout(&session.access_token, None).await.status(),
        StatusCode::NO_CONTENT
    );
    let revoked = Instant::now();

    // Assert: from one second after the revocation, B never answers active.
    tokio::time::sleep(Duration::from_secs(1)).await;
    while revoked.elapsed() < Duration::from_secs(3) {
        let answer = introspection_within(&b, &session.access_token, Duration::from_secs(2)).await;
        if let Some(answer) = answer {
            assert_eq!(answer["active"], false, "B vouched for a revoked session");
        }
    }

    // And once traffic flows again, B recovers by itself and knows the session ended.
    hole.swallow(false);
    let other = a.new_user().await;
    let start = Instant::now();
    loop {
        let live = introspection_within(&b, &other.access_token, Duration::from_secs(2)).await;
        if live.is_some_and(|v| v["active"] == true) {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(15),
            "B did not recover"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let dead = introspection_within(&b, &session.access_token, Duration::from_secs(2)).await;
    assert_eq!(dead.unwrap()["active"], false);
}
