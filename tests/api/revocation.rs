//! Revocation reaches every instance on the same database within one second, although each
//! instance answers validation from memory.

use reqwest::StatusCode;

use crate::helpers::{refused_within_a_second, spawn_app, spawn_on};

#[tokio::test]
async fn a_logout_on_one_instance_is_seen_by_another_within_a_second() {
    let a = spawn_app().await;
    let b = spawn_on(a.db.clone(), |_| {}).await;
    crate::helpers::until_listening(&b).await;
    let session = a.new_user().await;
    // B has the session cached as live.
    assert_eq!(b.me(&session.access_token).await.status(), StatusCode::OK);
    assert_eq!(b.me(&session.access_token).await.status(), StatusCode::OK);

    assert_eq!(
        a.logout(&session.access_token, None).await.status(),
        StatusCode::NO_CONTENT
    );
    refused_within_a_second(&b, &session.access_token).await;
}

#[tokio::test]
async fn a_password_change_on_one_instance_ends_other_sessions_everywhere() {
    let a = spawn_app().await;
    let b = spawn_on(a.db.clone(), |_| {}).await;
    crate::helpers::until_listening(&b).await;
    let phone = a.new_user_with_email("ann@example.com").await;
    let laptop = crate::helpers::Session::from_body(
        a.login("ann@example.com", crate::helpers::STRONG_PASSWORD)
            .await
            .json()
            .await
            .unwrap(),
    );
    assert_eq!(b.me(&laptop.access_token).await.status(), StatusCode::OK);

    let change = a
        .post_json(
            "/v1/password",
            &serde_json::json!({
                "current_password": crate::helpers::STRONG_PASSWORD,
                "new_password": "a completely different passphrase 7",
            }),
        )
        .await;
    // That request carried no token: it must be refused and change nothing.
    assert_eq!(change.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(b.me(&laptop.access_token).await.status(), StatusCode::OK);

    let change = a
        .change_password(
            &phone.access_token,
            &serde_json::json!({
                "current_password": crate::helpers::STRONG_PASSWORD,
                "new_password": "a completely different passphrase 7",
            }),
        )
        .await;
    assert_eq!(change.status(), StatusCode::NO_CONTENT);
    refused_within_a_second(&b, &laptop.access_token).await;
    assert_eq!(b.me(&phone.access_token).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn the_cli_revocation_path_is_seen_by_a_running_instance() {
    let app = spawn_app().await;
    let session = app.new_user().await;
    assert_eq!(app.me(&session.access_token).await.status(), StatusCode::OK);
    // What `sessiond users revoke-sessions` does, from outside the running instance.
    let store = sessiond::store::Store::connect(&crate::helpers::test_settings(&app.db).database)
        .await
        .unwrap();
    let ended = store
        .end_sessions(
            sessiond::store::SessionsToEnd::OfUser {
                user_id: &session.user_id,
                keep: None,
            },
            sessiond::domain::RevokeReason::Admin,
            crate::helpers::system_now(),
        )
        .await
        .unwrap();
    assert_eq!(ended, vec![session.session_id.clone()]);
    refused_within_a_second(&app, &session.access_token).await;
}

#[tokio::test]
async fn an_instance_cut_off_from_its_database_never_vouches_for_a_session() {
    // Arrange: instance a reaches the database through a relay, instance b directly; the
    // session is opened on b, so a has never seen it.
    let (a, mut switch) = crate::outage::spawn_app_with_switch(|s| {
        crate::service::with_test_keys(s);
        s.database.acquire_timeout_ms = 500;
    })
    .await;
    let b = crate::helpers::spawn_on(a.db.clone(), crate::service::with_test_keys).await;
    let session = b.new_user().await;

    // Act: a's database host is lost (connections dropped, new ones refused).
    switch.lose_host().await;
    // Readiness turns within a second.
    let unready = crate::helpers::within(std::time::Duration::from_millis(1500), || async {
        a.get("/readyz").send().await.unwrap().status() == StatusCode::SERVICE_UNAVAILABLE
    })
    .await;
    // Validation stops vouching once a's knowledge of ended sessions is over a second old.
    let introspect = || {
        crate::service::introspect(
            &a,
            Some(crate::service::INTROSPECT_KEY),
            &session.access_token,
        )
    };
    let stopped_vouching =
        crate::helpers::within(std::time::Duration::from_millis(1500), || async {
            let response = introspect().await;
            let status = response.status();
            let body: serde_json::Value = response.json().await.unwrap_or_default();
            status == StatusCode::SERVICE_UNAVAILABLE
                || body == serde_json::json!({"active": false})
        })
        .await;
    let later = introspect().await;

    // Assert
    assert!(unready, "/readyz stayed 200");
    match crate::helpers::backend() {
        // a cannot know whether another instance ended the session: 503, never active.
        crate::helpers::Backend::Postgres => {
            assert!(stopped_vouching, "introspection stayed active");
            let status = later.status();
            let body: serde_json::Value = later.json().await.unwrap();
            assert!(
                status == StatusCode::SERVICE_UNAVAILABLE
                    || body == serde_json::json!({"active": false}),
                "{status} {body}"
            );
        }
        // SQLite: the file is still readable (only writes are locked), and the event log with
        // it, so this instance still knows the session has not ended.
        crate::helpers::Backend::Sqlite => {
            assert!(!stopped_vouching, "a readable database should still vouch");
            crate::service::assert_active(later).await;
        }
    }
    switch.restore().await;
}
