//! Sessions and keys survive restarts, and instances sharing a database agree on keys.

use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::{spawn_app, spawn_on};

#[tokio::test]
async fn tokens_issued_before_a_restart_still_work_after_it() {
    let first = spawn_app().await;
    let session = first.new_user_with_email("ann@example.com").await;
    let keys_before = first.jwks().await;
    first.stop().await;
    assert!(
        first.get("/healthz").send().await.is_err(),
        "the first instance is down"
    );

    let second = spawn_on(first.db.clone(), |_| {}).await;
    let me = second.me(&session.access_token).await;
    assert_eq!(me.status(), StatusCode::OK);
    let body: Value = me.json().await.unwrap();
    assert_eq!(body["user"]["email"], "ann@example.com");
    assert_eq!(second.jwks().await, keys_before);
    assert_eq!(
        second.refresh(&session.refresh_token).await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn two_instances_starting_at_once_create_one_signing_key() {
    let db = std::sync::Arc::new(crate::helpers::TestDb::new().await);
    let (a, b) = tokio::join!(spawn_on(db.clone(), |_| {}), spawn_on(db.clone(), |_| {}));
    let (keys_a, keys_b) = (a.jwks().await, b.jwks().await);
    assert_eq!(keys_a["keys"].as_array().unwrap().len(), 1);
    assert_eq!(keys_a, keys_b);
    // A token from one instance is accepted by the other.
    let session = a.new_user().await;
    assert_eq!(b.me(&session.access_token).await.status(), StatusCode::OK);
}
