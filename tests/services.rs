//! The services called directly, without HTTP: each test composes one instance on a fresh
//! SQLite file (as `startup::compose` does for the server and the CLI), moves its clock instead
//! of waiting, and asserts what an operation returns, what it ends and what it audits. The API
//! suite (`tests/api`) covers the same operations over HTTP on both backends.

use secrecy::SecretString;
use serde_json::Value;
use sessiond::clock::Clock;
use sessiond::config::Settings;
use sessiond::domain::{ClientInfo, Email};
use sessiond::error::Error;
use sessiond::services::Services;
use sessiond::services::admin::AdminCaller;
use sessiond::services::ending::LogoutScope;
use sessiond::services::sessions::Issued;
use sessiond::startup::compose::Core;
use sessiond::store::Store;

const PASSWORD: &str = "correct horse battery staple 9";

/// One composed instance on its own SQLite file, removed when dropped.
struct Instance {
    core: Core,
    services: Services,
    dir: std::path::PathBuf,
}

impl Drop for Instance {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

async fn instance() -> Instance {
    sessiond::install_crypto_provider();
    let dir = std::env::temp_dir().join(format!("sessiond-services-{}", uuid::Uuid::new_v4()));
    let mut settings = Settings::defaults();
    settings.database.url = SecretString::from(format!("sqlite://{}/db.sqlite", dir.display()));
    settings.passwords.argon2_memory_kib = 1024;
    settings.passwords.argon2_iterations = 1;
    settings.rate_limits.credentials_per_minute = 0;
    settings.rate_limits.guests_per_minute = 0;
    let store = Store::connect(&settings.database)
        .await
        .expect("the file opens");
    store.migrate().await.expect("migrations apply");
    let core = Core::build(settings, store, Clock::system())
        .await
        .expect("the core builds");
    let services = core.services();
    Instance {
        core,
        services,
        dir,
    }
}

fn client() -> ClientInfo {
    ClientInfo {
        user_agent: Some("services-test".into()),
        ip_address: Some("127.0.0.1".into()),
    }
}

async fn signup(app: &Instance, email: &str) -> Issued {
    app.services
        .accounts
        .signup(email, SecretString::from(PASSWORD), &client())
        .await
        .expect("signup")
}

async fn login(app: &Instance, email: &str) -> Issued {
    let password = SecretString::from(PASSWORD);
    app.services
        .accounts
        .login(email, &password, &client())
        .await
        .expect("login")
}

/// The audit events of `user_id`, oldest first, as (type, detail).
async fn audit_of(app: &Instance, user_id: &str) -> Vec<(String, Value)> {
    let mut events = app
        .services
        .admin
        .audit_events(Some(user_id), 100)
        .await
        .expect("the audit trail reads");
    events.reverse();
    events.into_iter().map(|e| (e.kind, e.detail)).collect()
}

#[tokio::test]
async fn logout_of_the_others_ends_only_them_and_records_which() {
    let app = instance().await;
    let first = signup(&app, "ann@example.com").await;
    let second = login(&app, "ann@example.com").await;
    let third = login(&app, "ann@example.com").await;

    let ended = app
        .services
        .ending
        .logout(
            &second.session_id,
            &second.user.id,
            LogoutScope::Others,
            &client(),
        )
        .await
        .unwrap();

    let mut expected = vec![first.session_id.to_string(), third.session_id.to_string()];
    let mut ended_sorted = ended.clone();
    expected.sort();
    ended_sorted.sort();
    assert_eq!(ended_sorted, expected);
    let validation = &app.services.validation;
    assert!(validation.authenticate(&second.access_token).await.is_ok());
    for gone in [&first, &third] {
        let refused = validation.authenticate(&gone.access_token).await;
        assert!(matches!(refused, Err(Error::InvalidToken(_))));
    }
    let (kind, detail) = audit_of(&app, &first.user.id).await.pop().unwrap();
    assert_eq!(kind, "logout");
    assert_eq!(detail["scope"], "others");
    assert_eq!(detail["revoked"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn a_refresh_token_spent_twice_after_the_grace_window_ends_the_session() {
    let app = instance().await;
    let issued = signup(&app, "ann@example.com").await;
    let sessions = &app.services.sessions;

    let rotated = sessions.refresh(&issued.refresh_token, &client()).await;
    assert!(rotated.is_ok());
    // Within the grace window the same presentation gets the same successor (a lost response).
    let replayed = sessions
        .refresh(&issued.refresh_token, &client())
        .await
        .expect("a replay inside the grace window");
    use secrecy::ExposeSecret;
    assert_eq!(
        replayed.refresh_token.expose_secret(),
        rotated.unwrap().refresh_token.expose_secret()
    );
    app.core
        .clock
        .advance(app.core.settings.sessions.refresh_grace_secs + 1);

    let reused = sessions.refresh(&issued.refresh_token, &client()).await;

    assert!(matches!(reused, Err(Error::RefreshTokenReused)));
    let after = sessions.refresh(&replayed.refresh_token, &client()).await;
    assert!(
        matches!(after, Err(Error::SessionRevoked)),
        "the session ended"
    );
    let kinds: Vec<String> = audit_of(&app, &issued.user.id)
        .await
        .into_iter()
        .map(|(kind, _)| kind)
        .collect();
    assert!(
        kinds.contains(&"refresh_reuse_detected".to_string()),
        "{kinds:?}"
    );
}

#[tokio::test]
async fn a_wrong_current_password_is_audited_and_changes_nothing() {
    let app = instance().await;
    let issued = signup(&app, "ann@example.com").await;
    let other = login(&app, "ann@example.com").await;
    let accounts = &app.services.accounts;
    let (wrong_password, right_password) = (
        SecretString::from("not the password at all"),
        SecretString::from(PASSWORD),
    );
    let caller = client();
    let change = |current| {
        accounts.change_password(
            &issued.user.id,
            &issued.session_id,
            Some("ann@example.com"),
            current,
            SecretString::from("another horse battery staple 10"),
            &caller,
        )
    };

    let wrong = change(&wrong_password).await;

    assert!(matches!(wrong, Err(Error::InvalidCredentials)));
    let (kind, detail) = audit_of(&app, &issued.user.id).await.pop().unwrap();
    assert_eq!(kind, "credential_check_failed");
    assert_eq!(detail["purpose"], "password_change");
    let validation = &app.services.validation;
    assert!(validation.authenticate(&other.access_token).await.is_ok());

    change(&right_password).await.expect("the right password");
    assert!(validation.authenticate(&issued.access_token).await.is_ok());
    let ended = validation.authenticate(&other.access_token).await;
    assert!(
        matches!(ended, Err(Error::InvalidToken(_))),
        "other sessions end"
    );
}

#[tokio::test]
async fn the_operator_creates_and_disables_a_user_as_the_caller_cli() {
    let app = instance().await;
    let by = AdminCaller {
        service: "cli",
        client: &client(),
    };
    let admin = &app.services.admin;
    let email = Email::parse("bob@example.com").unwrap();

    let user = admin
        .create_user(&email, SecretString::from(PASSWORD), &by)
        .await
        .unwrap();
    let again = admin
        .create_user(&email, SecretString::from(PASSWORD), &by)
        .await;
    assert!(matches!(again, Err(Error::EmailTaken)));
    let weak = Email::parse("carl@example.com").unwrap();
    let refused = admin
        .create_user(&weak, SecretString::from("password"), &by)
        .await;
    assert!(matches!(refused, Err(Error::WeakPassword(_))));
    let session = login(&app, "bob@example.com").await;
    assert_eq!(session.user.id, user.id);

    let ended = admin.disable_user(&user.id, &by).await.unwrap();

    assert_eq!(ended, vec![session.session_id.to_string()]);
    let refused = app
        .services
        .validation
        .authenticate(&session.access_token)
        .await;
    assert!(matches!(refused, Err(Error::InvalidToken(_))));
    let trail = audit_of(&app, &user.id).await;
    let by_cli: Vec<&str> = trail
        .iter()
        .filter(|(_, detail)| detail["service"] == "cli")
        .map(|(kind, _)| kind.as_str())
        .collect();
    assert_eq!(by_cli, ["admin_created_user", "admin_disabled_user"]);
}

#[tokio::test]
async fn a_ticket_is_redeemed_once_and_expires_with_the_clock() {
    let app = instance().await;
    let issued = signup(&app, "ann@example.com").await;
    let tickets = &app.services.tickets;

    let once = tickets.issue_ticket(&issued.session_id).await.unwrap();
    let first = tickets.redeem_ticket(&once).await.unwrap();
    assert_eq!(first.expect("a live session").session.id, issued.session_id);
    assert!(tickets.redeem_ticket(&once).await.unwrap().is_none());

    let late = tickets.issue_ticket(&issued.session_id).await.unwrap();
    app.core
        .clock
        .advance(sessiond::services::tickets::TICKET_TTL_SECS + 1);
    assert!(tickets.redeem_ticket(&late).await.unwrap().is_none());
}
