//! The periodic clean-up deletes long-ended sessions (with their tokens) and nothing else.

use reqwest::StatusCode;

use crate::helpers::spawn_app;

#[tokio::test]
async fn long_ended_sessions_are_purged_and_live_ones_kept() {
    let app = spawn_app().await;
    let live = app.new_user().await;
    let recently_revoked = app.new_user().await;
    let long_revoked = app.new_user().await;
    let store = &app.store;
    let now = crate::helpers::system_now();
    let eight_days_ago = now - 8 * 24 * 3600;
    assert!(
        store
            .end_sessions(
                sessiond::store::SessionsToEnd::One {
                    id: &recently_revoked.session_id,
                    owner: None,
                },
                sessiond::domain::RevokeReason::Admin,
                now
            )
            .await
            .unwrap()
            .len()
            == 1
    );
    assert!(
        store
            .end_sessions(
                sessiond::store::SessionsToEnd::One {
                    id: &long_revoked.session_id,
                    owner: None,
                },
                sessiond::domain::RevokeReason::Admin,
                eight_days_ago
            )
            .await
            .unwrap()
            .len()
            == 1
    );

    let deleted = sessiond::services::maintenance::purge_ended_sessions(&app.services.upkeep).await;

    assert_eq!(deleted, 1);
    assert!(
        store
            .find_session(&long_revoked.session_id)
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        store
            .find_session(&recently_revoked.session_id)
            .await
            .unwrap()
            .is_some()
    );
    assert_eq!(app.me(&live.access_token).await.status(), StatusCode::OK);
    // Its refresh token went with it: unknown now, not merely revoked.
    let refresh = app.refresh(&long_revoked.refresh_token).await;
    crate::helpers::assert_error(refresh, StatusCode::UNAUTHORIZED, "invalid_refresh_token").await;
}
