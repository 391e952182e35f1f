//! The `sessiond` binary as an operator runs it: refusing to start without its database, and
//! JSON logs that never contain a secret.

use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use crate::helpers::{STRONG_PASSWORD, TestDb};

pub fn sessiond() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_sessiond"));
    command
        .env_remove("DATABASE_URL")
        .env_remove("PORT")
        .env("SESSIOND__SERVER__HOST", "127.0.0.1")
        .env("SESSIOND__LOG__FORMAT", "json")
        .env("SESSIOND__LOG__LEVEL", "info");
    command
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn an_unreachable_database_stops_the_process_with_one_clear_line() {
    let output = sessiond()
        .env("DATABASE_URL", "postgres://app:hunter2@127.0.0.1:1/auth")
        .env("SESSIOND__DATABASE__ACQUIRE_TIMEOUT_MS", "500")
        .env("PORT", free_port().to_string())
        .output()
        .unwrap();
    assert!(!output.status.success());
    let text = String::from_utf8_lossy(&output.stdout).to_string()
        + &String::from_utf8_lossy(&output.stderr);
    let errors: Vec<&str> = text.lines().filter(|l| l.contains("ERROR")).collect();
    assert_eq!(errors.len(), 1, "{text}");
    assert!(
        errors[0].contains("cannot reach the database at postgres://app:***@127.0.0.1:1/auth"),
        "{text}"
    );
    assert!(!text.contains("hunter2"), "{text}");
}

#[tokio::test]
async fn logs_are_json_lines_without_secrets() {
    let db = TestDb::new().await;
    let port = free_port();
    let mut child = sessiond()
        .env("DATABASE_URL", &db.url)
        .env("PORT", port.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    let mut up = false;
    for _ in 0..100 {
        if http.get(format!("{base}/healthz")).send().await.is_ok() {
            up = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(up, "the binary did not start");
    let body = serde_json::json!({"email": "ann@example.com", "password": STRONG_PASSWORD});
    let signup: Value = http
        .post(format!("{base}/v1/signup"))
        .json(&body)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let refresh_token = signup["refresh_token"].as_str().unwrap().to_string();
    let access_token = signup["access_token"].as_str().unwrap().to_string();
    http.post(format!("{base}/v1/login"))
        .json(&serde_json::json!({"email": "ann@example.com", "password": "wrong password here"}))
        .send()
        .await
        .unwrap();
    http.post(format!("{base}/v1/token/refresh"))
        .json(&serde_json::json!({ "refresh_token": refresh_token }))
        .send()
        .await
        .unwrap();
    http.get(format!("{base}/v1/me"))
        .bearer_auth(&access_token)
        .send()
        .await
        .unwrap();
    // A forged header: without `trust_proxy` the client is the TCP peer, in the log as in limits.
    http.get(format!("{base}/healthz"))
        .header("x-forwarded-for", "203.0.113.66")
        .header("forwarded", "for=203.0.113.67")
        .send()
        .await
        .unwrap();
    child.kill().unwrap();
    let output = child.wait_with_output().unwrap();
    let logs = String::from_utf8_lossy(&output.stdout).to_string()
        + &String::from_utf8_lossy(&output.stderr);

    let lines: Vec<Value> = logs
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON log line"))
        .collect();
    let completed: Vec<&Value> = lines
        .iter()
        .filter(|l| l["fields"]["message"] == "request completed")
        .collect();
    assert!(completed.len() >= 5, "{logs}");
    for line in &completed {
        assert!(line["fields"]["status"].is_u64(), "{line}");
        assert!(line["fields"]["latency_ms"].is_f64(), "{line}");
        assert!(line["span"]["request_id"].is_string(), "{line}");
        assert_eq!(line["span"]["http.client_ip"], "127.0.0.1", "{line}");
    }
    assert!(
        !logs.contains("203.0.113.66"),
        "a forged address reached the logs"
    );
    assert!(
        !logs.contains("203.0.113.67"),
        "a forged address reached the logs"
    );
    for secret in [
        STRONG_PASSWORD,
        "wrong password here",
        &refresh_token,
        &access_token,
    ] {
        assert!(!logs.contains(secret), "a secret reached the logs");
    }
}
