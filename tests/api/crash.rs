//! A process killed with SIGKILL in the middle of refresh rotations: after a restart the client
//! is never locked out and the session never has two live refresh chains.

use std::process::{Child, Stdio};
use std::time::Duration;

use rand::Rng;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::binary::{free_port, sessiond};
use crate::helpers::{STRONG_PASSWORD, TestDb, became_ready};

struct Running {
    child: Child,
    base: String,
}

async fn start(db: &TestDb, port: u16, http: &reqwest::Client) -> Running {
    let child = sessiond()
        .env("DATABASE_URL", &db.url)
        .env("PORT", port.to_string())
        .env("SESSIOND__LOG__LEVEL", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let mut running = Running { child, base };
    if became_ready(http, &running.base).await {
        return running;
    }
    let _ = running.child.kill();
    let _ = running.child.wait();
    panic!("sessiond did not become ready");
}

async fn refresh(http: &reqwest::Client, base: &str, token: &str) -> reqwest::Result<Value> {
    let response = http
        .post(format!("{base}/v1/token/refresh"))
        .json(&json!({ "refresh_token": token }))
        .send()
        .await?;
    let status = response.status();
    let body: Value = response.json().await?;
    assert_eq!(
        status,
        StatusCode::OK,
        "the client lost its session: {body}"
    );
    Ok(body)
}

#[tokio::test]
async fn sigkill_during_refreshes_never_locks_the_client_out_nor_forks_the_chain() {
    // Arrange
    let db = TestDb::new().await;
    let port = free_port();
    let http = reqwest::Client::new();
    let mut server = start(&db, port, &http).await;
    let signup: Value = http
        .post(format!("{}/v1/signup", server.base))
        .json(&json!({"email": "ann@example.com", "password": STRONG_PASSWORD}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let session_id = signup["session_id"].as_str().unwrap().to_string();
    // The last refresh token the client was given (acknowledged).
    let mut token = signup["refresh_token"].as_str().unwrap().to_string();
    let mut crashes = 0;

    // Act: refresh in a loop while a killer strikes at random moments.
    while crashes < 8 {
        let pid = server.child.id();
        let delay = rand::rng().random_range(0..40u64);
        let killer = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(delay)).await;
            let _ = std::process::Command::new("kill")
                .args(["-9", &pid.to_string()])
                .status();
        });
        // Until the process dies under a request (its answer, if any, is lost).
        while let Ok(body) = refresh(&http, &server.base, &token).await {
            token = body["refresh_token"].as_str().unwrap().to_string();
        }
        killer.await.unwrap();
        server.child.wait().unwrap();
        crashes += 1;
        server = start(&db, port, &http).await;
        // Assert: the token whose answer may have been lost still works: either it was never
        // spent, or it was and the grace window hands back the same successor.
        let body = refresh(&http, &server.base, &token).await.unwrap();
        token = body["refresh_token"].as_str().unwrap().to_string();
    }

    // Assert: exactly one live token, and it is the client's.
    let mut conn = crate::helpers::raw_connection(&db.url).await;
    let live: i64 = sqlx::query_scalar(
        "select count(*) from refresh_tokens where session_id = $1 \
         and rotated_at is null and revoked_at is null",
    )
    .bind(&session_id)
    .fetch_one(&mut conn)
    .await
    .unwrap();
    assert_eq!(live, 1, "one live refresh chain");
    let body = refresh(&http, &server.base, &token).await.unwrap();
    assert_eq!(body["session_id"], session_id.as_str());
    server.child.kill().unwrap();
    server.child.wait().unwrap();
}
