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
        .revoke_user_sessions(
            &session.user_id,
            None,
            sessiond::domain::RevokeReason::Admin,
            sessiond::clock::now(),
        )
        .await
        .unwrap();
    assert_eq!(ended, vec![session.session_id.clone()]);
    refused_within_a_second(&app, &session.access_token).await;
}
