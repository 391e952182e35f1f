//! `GET /v1/events`: the session event feed, as a stream and as a poll. Every way a session
//! ends is an event with its reason, written with the change; a consumer resumes with no loss
//! and is told to start over when it asks for events that are no longer retained.

use std::time::{Duration, Instant};

use futures::StreamExt;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{
    Backend, STRONG_PASSWORD, Session, TestApp, assert_error, backend, spawn_app_with, spawn_on,
};
use crate::service::{ADMIN_KEY, EVENTS_KEY, INTROSPECT_KEY, admin, with_test_keys};

async fn poll(app: &TestApp, after: i64) -> Value {
    let response = app
        .get(&format!("/v1/events?after={after}&limit=1000"))
        .bearer_auth(EVENTS_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["cache-control"], "no-store");
    response.json().await.unwrap()
}

/// (type, session id, reason) of every event after `after`, in order.
async fn events_after(app: &TestApp, after: i64) -> Vec<(String, Option<String>, Option<String>)> {
    let page = poll(app, after).await;
    page["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            let text = |k: &str| e[k].as_str().map(str::to_string);
            (text("type").unwrap(), text("session_id"), text("reason"))
        })
        .collect()
}

fn ended(session: &Session, reason: &str) -> (String, Option<String>, Option<String>) {
    (
        "session.ended".into(),
        Some(session.session_id.clone()),
        Some(reason.into()),
    )
}

fn created(session: &Session) -> (String, Option<String>, Option<String>) {
    (
        "session.created".into(),
        Some(session.session_id.clone()),
        None,
    )
}

#[tokio::test]
async fn every_way_a_session_ends_is_an_event_with_its_reason() {
    // Arrange
    let app = spawn_app_with(|s| {
        with_test_keys(s);
        s.sessions.refresh_grace_secs = 0;
    })
    .await;
    let start = poll(&app, 0).await["next"].as_i64().unwrap();
    let email = "ann@example.com";
    let first = app.new_user_with_email(email).await;
    let (a, b, c, d) = (
        app.login_ok(email, STRONG_PASSWORD).await,
        app.login_ok(email, STRONG_PASSWORD).await,
        app.login_ok(email, STRONG_PASSWORD).await,
        app.login_ok(email, STRONG_PASSWORD).await,
    );

    // Act: each way to end a session once.
    assert_eq!(
        app.logout(&a.access_token, None).await.status(),
        StatusCode::NO_CONTENT
    );
    let deleted = app.delete_session(&first.access_token, &b.session_id).await;
    assert_eq!(deleted.status(), StatusCode::NO_CONTENT);
    let revoked = app
        .post("/v1/revoke")
        .form(&[("token", c.refresh_token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(revoked.status(), StatusCode::OK);
    assert_eq!(app.refresh(&d.refresh_token).await.status(), StatusCode::OK);
    app.advance_clock(1); // past the 0 s grace window
    assert_eq!(
        app.refresh(&d.refresh_token).await.status(),
        StatusCode::UNAUTHORIZED
    );
    let e = app.login_ok(email, STRONG_PASSWORD).await;
    let f = app.login_ok(email, STRONG_PASSWORD).await;
    let change = app
        .change_password(
            &e.access_token,
            &json!({"current_password": STRONG_PASSWORD, "new_password": "a completely different passphrase 7"}),
        )
        .await;
    assert_eq!(change.status(), StatusCode::NO_CONTENT);
    let g = app
        .login_ok(email, "a completely different passphrase 7")
        .await;
    let path = format!("/v1/admin/users/{}/revoke-sessions", first.user_id);
    let by_admin = admin(&app, Method::POST, &path, Some(ADMIN_KEY))
        .send()
        .await
        .unwrap();
    assert_eq!(by_admin.status(), StatusCode::NO_CONTENT);
    let h = app
        .login_ok(email, "a completely different passphrase 7")
        .await;
    let path = format!("/v1/admin/users/{}", first.user_id);
    let gone = admin(&app, Method::DELETE, &path, Some(ADMIN_KEY))
        .send()
        .await
        .unwrap();
    assert_eq!(gone.status(), StatusCode::NO_CONTENT);

    // Assert: the feed tells each change once, in order, with its reason.
    let events = events_after(&app, start).await;
    let expected = vec![
        created(&first),
        created(&a),
        created(&b),
        created(&c),
        created(&d),
        ended(&a, "logout"),
        ended(&b, "revoked"),
        ended(&c, "token_revoked"),
        ended(&d, "refresh_token_reused"),
        created(&e),
        created(&f),
    ];
    // The password change ends every other live session: first and f.
    let mut by_change = vec![
        ended(&first, "password_changed"),
        ended(&f, "password_changed"),
    ];
    by_change.sort();
    let mut got_change = events[11..13].to_vec();
    got_change.sort();
    assert_eq!(got_change, by_change, "{events:?}");
    assert_eq!(events[..11], expected[..], "{events:?}");
    assert_eq!(events[13], created(&g));
    let mut by_admin = vec![ended(&e, "admin"), ended(&g, "admin")];
    by_admin.sort();
    let mut got_admin = events[14..16].to_vec();
    got_admin.sort();
    assert_eq!(got_admin, by_admin, "{events:?}");
    assert_eq!(events[16], created(&h));
    // Deleting the user ends its one live session and deletes the user, in one transaction.
    let mut by_delete = vec![
        ended(&h, "user_deleted"),
        ("user.deleted".to_string(), None, None),
    ];
    by_delete.sort();
    let mut got_delete = events[17..].to_vec();
    got_delete.sort();
    assert_eq!(got_delete, by_delete, "{events:?}");
}

/// A connected `text/event-stream` consumer.
struct Consumer {
    chunks: futures::stream::BoxStream<'static, reqwest::Result<Vec<u8>>>,
    buffer: String,
}

/// One server-sent event: (id, event type, data).
type Sse = (Option<i64>, String, Value);

impl Consumer {
    async fn connect(app: &TestApp, last_event_id: Option<i64>) -> Consumer {
        Consumer::connect_with(app, EVENTS_KEY, last_event_id).await
    }

    async fn connect_with(app: &TestApp, key: &str, last_event_id: Option<i64>) -> Consumer {
        let mut request = app.get("/v1/events").bearer_auth(key);
        if let Some(id) = last_event_id {
            request = request.header("last-event-id", id.to_string());
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert!(
            response.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/event-stream")
        );
        let mut consumer = Consumer {
            chunks: response
                .bytes_stream()
                .map(|c| c.map(|b| b.to_vec()))
                .boxed(),
            buffer: String::new(),
        };
        // The stream opens with a comment, so the consumer knows it is subscribed.
        let opened = consumer.next_block(Duration::from_secs(5)).await;
        assert_eq!(opened.as_deref(), Some(": connected"));
        consumer
    }

    async fn next_block(&mut self, within: Duration) -> Option<String> {
        let deadline = Instant::now() + within;
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block = self.buffer[..end].to_string();
                self.buffer.drain(..end + 2);
                return Some(block);
            }
            let left = deadline.checked_duration_since(Instant::now())?;
            match tokio::time::timeout(left, self.chunks.next()).await {
                Ok(Some(Ok(chunk))) => self.buffer.push_str(&String::from_utf8_lossy(&chunk)),
                _ => return None,
            }
        }
    }

    /// True when the server ends the stream within `within` (whatever it sends before).
    async fn ended_within(&mut self, within: Duration) -> bool {
        let deadline = Instant::now() + within;
        loop {
            let Some(left) = deadline.checked_duration_since(Instant::now()) else {
                return false;
            };
            match tokio::time::timeout(left, self.chunks.next()).await {
                Ok(Some(Ok(_))) => continue,
                Ok(None) | Ok(Some(Err(_))) => return true,
                Err(_) => return false,
            }
        }
    }

    /// The next event (comments skipped), or `None` if none arrives `within`.
    async fn next_event(&mut self, within: Duration) -> Option<Sse> {
        let deadline = Instant::now() + within;
        loop {
            let left = deadline.checked_duration_since(Instant::now())?;
            let block = self.next_block(left).await?;
            let (mut id, mut kind, mut data) = (None, String::new(), Value::Null);
            for line in block.lines() {
                if let Some(v) = line.strip_prefix("id: ") {
                    id = Some(v.parse().unwrap());
                } else if let Some(v) = line.strip_prefix("event: ") {
                    kind = v.to_string();
                } else if let Some(v) = line.strip_prefix("data: ") {
                    data = serde_json::from_str(v).unwrap();
                }
            }
            if !kind.is_empty() {
                return Some((id, kind, data));
            }
        }
    }
}

#[tokio::test]
async fn the_stream_delivers_within_a_second_and_resumes_with_no_loss() {
    // Arrange
    let app = spawn_app_with(with_test_keys).await;
    let mut consumer = Consumer::connect(&app, None).await;
    let ann = app.new_user().await;

    // Act + Assert: the new session arrives within a second.
    let started = Instant::now();
    let (id, kind, data) = consumer
        .next_event(Duration::from_secs(1))
        .await
        .expect("an event");
    assert!(started.elapsed() < Duration::from_secs(1));
    assert_eq!(kind, "session.created");
    assert_eq!(data["session_id"], ann.session_id.as_str());
    assert_eq!(data["user_id"], ann.user_id.as_str());
    assert_eq!(data["id"], id.unwrap());
    assert!(data["at"].as_str().unwrap().ends_with('Z'), "{data}");
    let seen = id.unwrap();

    // The consumer goes away; three changes happen; it comes back with Last-Event-ID.
    drop(consumer);
    let bo = app.new_user().await;
    app.logout(&bo.access_token, None).await;
    app.logout(&ann.access_token, None).await;
    let mut consumer = Consumer::connect(&app, Some(seen)).await;
    let mut missed = Vec::new();
    for _ in 0..3 {
        missed.push(
            consumer
                .next_event(Duration::from_secs(2))
                .await
                .expect("a missed event"),
        );
    }
    let ids: Vec<i64> = missed.iter().map(|e| e.0.unwrap()).collect();
    assert!(
        ids.windows(2).all(|w| w[0] < w[1]) && ids[0] > seen,
        "{ids:?}"
    );
    let summary: Vec<(String, Value)> = missed
        .into_iter()
        .map(|(_, kind, data)| (kind, data["session_id"].clone()))
        .collect();
    assert_eq!(
        summary,
        vec![
            ("session.created".to_string(), json!(bo.session_id)),
            ("session.ended".to_string(), json!(bo.session_id)),
            ("session.ended".to_string(), json!(ann.session_id)),
        ]
    );
    // Nothing is delivered twice.
    assert!(
        consumer
            .next_event(Duration::from_millis(300))
            .await
            .is_none()
    );
}

#[tokio::test]
async fn every_instance_serves_the_same_stream() {
    let a = spawn_app_with(with_test_keys).await;
    let b = spawn_on(a.db.clone(), with_test_keys).await;
    crate::helpers::until_listening(&b).await;
    let mut on_b = Consumer::connect(&b, None).await;
    let session = a.new_user().await;
    let created = on_b
        .next_event(Duration::from_secs(1))
        .await
        .expect("created");
    assert_eq!(created.2["session_id"], session.session_id.as_str());
    let started = Instant::now();
    a.logout(&session.access_token, None).await;
    let ended = on_b
        .next_event(Duration::from_secs(1))
        .await
        .expect("ended");
    assert!(started.elapsed() < Duration::from_secs(1));
    assert_eq!(ended.1, "session.ended");
    assert_eq!(ended.2["reason"], "logout");
}

#[tokio::test]
async fn an_id_older_than_the_retention_gets_a_reset() {
    // Arrange: events, then a purge that removes all of them.
    let app = spawn_app_with(|s| {
        with_test_keys(s);
        s.events.retention_secs = -60;
    })
    .await;
    let ann = app.new_user().await;
    app.logout(&ann.access_token, None).await;
    // A fresh database numbers its events from 1: created (1) and ended (2).
    let first = 1;
    // The background purge, which runs the same code, may get there first.
    sessiond::services::maintenance::purge_old_events(&app.services.upkeep).await;
    let purged = app.store.events_purged_through().await.unwrap();
    assert!(purged >= 2, "{purged}");

    // Act + Assert: stream and poll both say start over.
    let mut consumer = Consumer::connect(&app, Some(first)).await;
    let (id, kind, _) = consumer.next_event(Duration::from_secs(2)).await.unwrap();
    assert_eq!(kind, "reset");
    let page = poll(&app, first).await;
    assert_eq!(page["reset"], true, "{page}");
    assert_eq!(page["next"].as_i64(), id);
    // After the reset, the stream goes on with new events.
    let bo = app.new_user().await;
    let (_, kind, data) = consumer.next_event(Duration::from_secs(2)).await.unwrap();
    assert_eq!(kind, "session.created");
    assert_eq!(data["session_id"], bo.session_id.as_str());
}

#[tokio::test]
async fn the_feed_refuses_bad_callers_and_bad_ids() {
    let app = spawn_app_with(with_test_keys).await;
    let no_key = app.get("/v1/events").send().await.unwrap();
    assert_error(no_key, StatusCode::UNAUTHORIZED, "invalid_client").await;
    for key in [INTROSPECT_KEY, ADMIN_KEY] {
        let wrong_scope = app.get("/v1/events").bearer_auth(key).send().await.unwrap();
        assert_error(wrong_scope, StatusCode::FORBIDDEN, "forbidden").await;
    }
    for bad in ["abc", "-1", "1.5", ""] {
        let response = app
            .get("/v1/events")
            .bearer_auth(EVENTS_KEY)
            .header("last-event-id", bad)
            .send()
            .await
            .unwrap();
        assert_error(response, StatusCode::BAD_REQUEST, "invalid_request").await;
    }
    for query in [
        "after=abc",
        "after=-3",
        "after=1&limit=0",
        "after=1&limit=1001",
        "limit=x",
    ] {
        let response = app
            .get(&format!("/v1/events?{query}"))
            .bearer_auth(EVENTS_KEY)
            .send()
            .await
            .unwrap();
        assert_error(response, StatusCode::BAD_REQUEST, "invalid_request").await;
    }
}

/// Holds the database's write lock from outside the service, with a session inserted but not
/// committed (PostgreSQL: its event id is taken; SQLite: the file is locked).
async fn uncommitted_session(app: &TestApp, user_id: &str) -> Box<dyn std::any::Any + Send> {
    let insert = "insert into user_sessions (id, user_id, kind, amr, created_at, last_seen_at, \
                  expires_at) values ($1, $2, 'password', '[\"pwd\"]', 1, 1, 9999999999)";
    let id = uuid::Uuid::now_v7().to_string();
    match backend() {
        Backend::Postgres => {
            use sqlx::Connection;
            let conn = sqlx::postgres::PgConnection::connect(&app.db.url)
                .await
                .unwrap();
            let mut tx = Box::new(conn);
            sqlx::raw_sql("begin").execute(&mut *tx).await.unwrap();
            sqlx::query(insert)
                .bind(&id)
                .bind(user_id)
                .execute(&mut *tx)
                .await
                .unwrap();
            tx
        }
        Backend::Sqlite => {
            use sqlx::Connection;
            let conn = sqlx::sqlite::SqliteConnection::connect(&app.db.url)
                .await
                .unwrap();
            let mut tx = Box::new(conn);
            sqlx::raw_sql("begin immediate")
                .execute(&mut *tx)
                .await
                .unwrap();
            sqlx::query(insert)
                .bind(&id)
                .bind(user_id)
                .execute(&mut *tx)
                .await
                .unwrap();
            tx
        }
    }
}

async fn commit(conn: Box<dyn std::any::Any + Send>) {
    match backend() {
        Backend::Postgres => {
            let mut conn = conn.downcast::<sqlx::postgres::PgConnection>().unwrap();
            sqlx::raw_sql("commit").execute(&mut *conn).await.unwrap();
        }
        Backend::Sqlite => {
            let mut conn = conn.downcast::<sqlx::sqlite::SqliteConnection>().unwrap();
            sqlx::raw_sql("commit").execute(&mut *conn).await.unwrap();
        }
    }
}

#[tokio::test]
async fn an_event_committed_later_never_gets_an_id_below_one_already_visible() {
    // Arrange: a transaction outside the service has written an event and not committed.
    let app = std::sync::Arc::new(spawn_app_with(with_test_keys).await);
    let ann = app.new_user().await;
    let start = poll(&app, 0).await["next"].as_i64().unwrap();
    let open = uncommitted_session(&app, &ann.user_id).await;

    // Act: the service ends a session meanwhile.
    let ending = {
        let app = app.clone();
        let token = ann.access_token.clone();
        tokio::spawn(async move { app.logout(&token, None).await.status() })
    };
    // On PostgreSQL the logout commits at once; SQLite's waits for the writer lock until the
    // other transaction commits. Give either 400 ms.
    crate::helpers::within(Duration::from_millis(400), || {
        let finished = ending.is_finished();
        async move { finished }
    })
    .await;
    // Assert: nothing is visible yet; after the commit both are, the earlier one first.
    assert_eq!(events_after(&app, start).await, vec![]);
    commit(open).await;
    assert_eq!(ending.await.unwrap(), StatusCode::NO_CONTENT);
    let page = poll(&app, start).await;
    let events = page["events"].as_array().unwrap();
    assert_eq!(events.len(), 2, "{page}");
    assert_eq!(events[0]["type"], "session.created");
    assert_eq!(events[1]["type"], "session.ended");
    assert_eq!(events[1]["session_id"], ann.session_id.as_str());
    assert!(events[0]["id"].as_i64() < events[1]["id"].as_i64());
}

#[tokio::test]
async fn the_poll_form_refuses_a_malformed_last_event_id_too() {
    let app = spawn_app_with(with_test_keys).await;
    let response = app
        .get("/v1/events?after=0&limit=10")
        .bearer_auth(EVENTS_KEY)
        .header("last-event-id", "-1")
        .send()
        .await
        .unwrap();
    assert_error(response, StatusCode::BAD_REQUEST, "invalid_request").await;
}

#[tokio::test]
async fn retiring_a_signing_key_is_announced_on_the_feed_with_its_kid() {
    // Arrange: a consumer on one instance, the key retired from the command line.
    let app = spawn_app_with(with_test_keys).await;
    crate::helpers::until_listening(&app).await;
    let session = app.new_user().await;
    let kid = crate::helpers::kid_of(&session.access_token);
    let mut consumer = Consumer::connect(&app, None).await;

    // Act
    let run = crate::cli::cli(&app.db, &["keys", "retire", &kid], None).await;
    assert_eq!(run.code, 0, "{run:?}");

    // Assert: the stream says so within a second, as `{id, type, at, kid}` and nothing else.
    let (id, kind, data) = consumer
        .next_event(Duration::from_secs(1))
        .await
        .expect("key.retired within a second");
    assert_eq!(kind, "key.retired");
    assert_eq!(data["kid"], kid.as_str());
    assert_eq!(data["type"], "key.retired");
    assert_eq!(data["id"].as_i64(), id);
    let mut fields: Vec<&str> = data
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    fields.sort();
    assert_eq!(fields, ["at", "id", "kid", "type"], "{data}");
    // The poll form carries the same event.
    let page = poll(&app, id.unwrap() - 1).await;
    assert_eq!(page["events"][0], data);
}

async fn stored_key_known(app: &TestApp, key: &str) {
    let known = crate::helpers::within(Duration::from_secs(3), || async {
        let response = app
            .get("/v1/events?after=0&limit=1")
            .bearer_auth(key)
            .send()
            .await
            .unwrap();
        response.status() == StatusCode::OK
    })
    .await;
    assert!(known, "the new key was not accepted");
}

/// A key created with `sessiond service-keys create NAME --scope events`.
async fn stored_events_key(app: &TestApp, name: &str) -> String {
    let run = crate::cli::cli(
        &app.db,
        &["service-keys", "create", name, "--scope", "events"],
        None,
    )
    .await;
    assert_eq!(run.code, 0, "{run:?}");
    let key = run.stdout.trim().to_string();
    // Every instance re-reads the keys twice a second.
    stored_key_known(app, &key).await;
    key
}

#[tokio::test]
async fn revoking_a_service_key_ends_its_open_streams_on_every_instance_within_a_second() {
    // Arrange: two instances on one database, each with a stream open with the same key.
    let a = spawn_app_with(with_test_keys).await;
    let b = spawn_on(a.db.clone(), with_test_keys).await;
    let key = stored_events_key(&a, "feed-reader").await;
    stored_key_known(&b, &key).await;
    let mut on_a = Consumer::connect_with(&a, &key, None).await;
    let mut on_b = Consumer::connect_with(&b, &key, None).await;
    // Another key's stream is not affected.
    let mut other = Consumer::connect(&b, None).await;

    // Act
    let run = crate::cli::cli(&a.db, &["service-keys", "revoke", "feed-reader"], None).await;
    assert_eq!(run.code, 0, "{run:?}");

    // Assert: both streams end within a second; the key gets 401 for anything new.
    assert!(
        on_a.ended_within(Duration::from_secs(1)).await,
        "instance a kept the stream"
    );
    assert!(
        on_b.ended_within(Duration::from_secs(1)).await,
        "instance b kept the stream"
    );
    for app in [&a, &b] {
        let response = app
            .get("/v1/events")
            .bearer_auth(&key)
            .send()
            .await
            .unwrap();
        assert_error(response, StatusCode::UNAUTHORIZED, "invalid_client").await;
    }
    let session = b.new_user().await;
    let (_, kind, data) = other.next_event(Duration::from_secs(2)).await.unwrap();
    assert_eq!(kind, "session.created");
    assert_eq!(data["session_id"], session.session_id.as_str());
}

#[tokio::test]
async fn one_key_holds_at_most_the_configured_number_of_streams() {
    // Arrange
    let app = spawn_app_with(|s| {
        with_test_keys(s);
        s.events.max_streams_per_key = 2;
    })
    .await;
    let first = Consumer::connect(&app, None).await;
    let _second = Consumer::connect(&app, None).await;

    // Act
    let third = app
        .get("/v1/events")
        .bearer_auth(EVENTS_KEY)
        .send()
        .await
        .unwrap();

    // Assert: 429 with Retry-After; another key is unaffected; a closed stream frees its place.
    assert!(third.headers().contains_key("retry-after"));
    assert_error(third, StatusCode::TOO_MANY_REQUESTS, "rate_limited").await;
    let key = stored_events_key(&app, "other-reader").await;
    let _other = Consumer::connect_with(&app, &key, None).await;
    drop(first);
    let freed = crate::helpers::within(Duration::from_secs(5), || async {
        let response = app
            .get("/v1/events")
            .bearer_auth(EVENTS_KEY)
            .send()
            .await
            .unwrap();
        response.status() == StatusCode::OK
    })
    .await;
    assert!(freed, "a closed stream's place was not freed");
}
