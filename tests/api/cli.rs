//! The operator's command line, run as the built binary against the test database: users
//! (create, show, disable, enable, delete), sessions (list, revoke), keys retire, and how each
//! answers bad arguments. The commands that change state run through the same services as the
//! admin API, as the caller "cli": audited and ended the same way.

use std::process::Stdio;

use reqwest::StatusCode;
use serde_json::Value;
use tokio::io::AsyncWriteExt;

use crate::binary::sessiond;
use crate::helpers::{
    STRONG_PASSWORD, Session, TestApp, TestDb, assert_error, count_users, kid_of,
    refused_within_a_second, spawn_app, spawn_on,
};

/// What one run of the binary did.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl std::fmt::Debug for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit {}\nstdout: {}\nstderr: {}",
            self.code, self.stdout, self.stderr
        )
    }
}

/// Runs `sessiond ARGS` on `db`, feeding `stdin` if given (else an empty standard input).
pub async fn cli(db: &TestDb, args: &[&str], stdin: Option<&str>) -> Run {
    let mut command = tokio::process::Command::from(sessiond());
    command
        .env("DATABASE_URL", &db.url)
        .env("SESSIOND__LOG__LEVEL", "warn")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command.spawn().expect("the binary runs");
    let mut pipe = child.stdin.take().unwrap();
    if let Some(input) = stdin {
        // A command that fails on its arguments exits without reading: a broken pipe is fine.
        let _ = pipe.write_all(input.as_bytes()).await;
    }
    drop(pipe);
    let output = child.wait_with_output().await.unwrap();
    Run {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// The `name value` lines of `users show`.
fn fields(run: &Run) -> std::collections::HashMap<String, String> {
    run.stdout
        .lines()
        .filter_map(|line| line.split_once(char::is_whitespace))
        .map(|(k, v)| (k.to_string(), v.trim().to_string()))
        .collect()
}

async fn jwks_kids(app: &TestApp) -> Vec<String> {
    let jwks = app.jwks().await;
    jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn every_command_has_help_with_an_example() {
    let db = TestDb::new().await;
    let commands: [&[&str]; 15] = [
        &["serve"],
        &["migrate"],
        &["keys", "list"],
        &["keys", "rotate"],
        &["keys", "retire"],
        &["users", "create"],
        &["users", "show"],
        &["users", "disable"],
        &["users", "enable"],
        &["users", "delete"],
        &["users", "revoke-sessions"],
        &["sessions", "list"],
        &["sessions", "revoke"],
        &["service-keys", "create"],
        &["service-keys", "revoke"],
    ];
    for command in commands {
        let args: Vec<&str> = command.iter().copied().chain(["--help"]).collect();
        let run = cli(&db, &args, None).await;
        assert_eq!(run.code, 0, "{command:?}: {run:?}");
        assert!(run.stdout.contains("Example"), "{command:?}: {run:?}");
    }
    let create = cli(&db, &["users", "create", "--help"], None).await;
    assert!(create.stdout.contains("standard input"), "{create:?}");
    // Unknown commands and missing arguments are usage errors: exit 2, a message on stderr.
    for args in [
        &["users", "frobnicate"][..],
        &["users", "create"],
        &["users", "disable"],
        &["sessions", "list"],
        &["keys", "retire"],
    ] {
        let run = cli(&db, args, None).await;
        assert_eq!(run.code, 2, "{args:?}: {run:?}");
        assert!(run.stdout.is_empty(), "{args:?}: {run:?}");
        assert!(run.stderr.contains("Usage"), "{args:?}: {run:?}");
    }
}

#[tokio::test]
async fn users_create_reads_the_password_from_stdin_and_the_user_can_log_in() {
    let app = spawn_app().await;
    let input = format!("{STRONG_PASSWORD}\n");

    let run = cli(
        &app.db,
        &["users", "create", " Ann@Example.COM"],
        Some(&input),
    )
    .await;

    assert_eq!(run.code, 0, "{run:?}");
    let id = run.stdout.trim().to_string();
    assert!(uuid::Uuid::parse_str(&id).is_ok(), "{run:?}");
    let session = app.login_ok("ann@example.com", STRONG_PASSWORD).await;
    assert_eq!(session.user_id, id);
    assert_eq!(session.body["user"]["email"], "ann@example.com");
    // A CRLF line ending is not part of the password.
    let run = cli(
        &app.db,
        &["users", "create", "bob@example.com"],
        Some(&format!("{STRONG_PASSWORD}\r\n")),
    )
    .await;
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(
        app.login("bob@example.com", STRONG_PASSWORD).await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn users_create_refuses_bad_input_with_clear_errors() {
    let app = spawn_app().await;
    app.new_user_with_email("ann@example.com").await;
    let strong = format!("{STRONG_PASSWORD}\n");
    let cases: [(&[&str], &str, i32, &str); 6] = [
        (
            &["users", "create", "ann@example.com"],
            &strong,
            1,
            "exists already",
        ),
        (
            &["users", "create", "not-an-email"],
            &strong,
            2,
            "not valid",
        ),
        (
            &["users", "create", "carl@example.com"],
            "password\n",
            2,
            "password was refused",
        ),
        (
            &["users", "create", "carl@example.com"],
            "short\n",
            2,
            "at least 8",
        ),
        (
            &["users", "create", "carl@example.com"],
            "",
            2,
            "no password",
        ),
        // The password is never an argument.
        (
            &["users", "create", "carl@example.com", STRONG_PASSWORD],
            &strong,
            2,
            "unexpected argument",
        ),
    ];
    for (args, stdin, code, message) in cases {
        let run = cli(&app.db, args, Some(stdin)).await;
        assert_eq!(run.code, code, "{args:?}: {run:?}");
        assert!(run.stderr.contains(message), "{args:?}: {run:?}");
        assert!(run.stdout.is_empty(), "{args:?}: {run:?}");
    }
    assert_eq!(count_users(&app).await, 1, "no user was created");
}

#[tokio::test]
async fn users_show_finds_a_user_by_email_or_id_and_never_prints_the_hash() {
    let app = spawn_app().await;
    let first = app.new_user_with_email("ann@example.com").await;
    assert_eq!(
        app.login("ann@example.com", STRONG_PASSWORD).await.status(),
        StatusCode::OK
    );
    let guest = app.guest().await;

    let by_email = cli(&app.db, &["users", "show", "ANN@example.com"], None).await;
    let by_id = cli(&app.db, &["users", "show", &first.user_id], None).await;

    assert_eq!(by_email.code, 0, "{by_email:?}");
    assert_eq!(by_email.stdout, by_id.stdout);
    let shown = fields(&by_email);
    assert_eq!(shown["id"], first.user_id);
    assert_eq!(shown["email"], "ann@example.com");
    assert_eq!(shown["is_guest"], "false");
    assert_eq!(
        shown["created_at"],
        first.body["user"]["created_at"].as_str().unwrap()
    );
    assert_eq!(shown["disabled"], "no");
    assert_eq!(shown["sessions"], "2");
    assert!(!by_email.stdout.contains("argon2"), "{by_email:?}");
    let guest_shown = fields(&cli(&app.db, &["users", "show", &guest.user_id], None).await);
    assert_eq!(guest_shown["is_guest"], "true");
    assert_eq!(guest_shown["email"], "-");
    assert_eq!(guest_shown["sessions"], "1");
    // After a logout one session is left.
    app.logout(&first.access_token, None).await;
    assert_eq!(
        fields(&cli(&app.db, &["users", "show", &first.user_id], None).await)["sessions"],
        "1"
    );

    let unknown = cli(&app.db, &["users", "show", "nobody@example.com"], None).await;
    assert_eq!(unknown.code, 1, "{unknown:?}");
    assert!(
        unknown.stderr.contains("no user nobody@example.com"),
        "{unknown:?}"
    );
    let unknown_id = uuid::Uuid::now_v7().to_string();
    assert_eq!(
        cli(&app.db, &["users", "show", &unknown_id], None)
            .await
            .code,
        1
    );
    let malformed = cli(&app.db, &["users", "show", "ann"], None).await;
    assert_eq!(malformed.code, 2, "{malformed:?}");
    assert!(
        malformed.stderr.contains("an email address or a user id"),
        "{malformed:?}"
    );
}

#[tokio::test]
async fn users_disable_ends_every_session_everywhere_and_enable_lets_the_user_back_in() {
    let a = spawn_app().await;
    let b = spawn_on(a.db.clone(), |_| {}).await;
    crate::helpers::until_listening(&b).await;
    let session = a.new_user_with_email("ann@example.com").await;
    // B has the session cached as live.
    assert_eq!(b.me(&session.access_token).await.status(), StatusCode::OK);
    assert_eq!(b.me(&session.access_token).await.status(), StatusCode::OK);

    let run = cli(&a.db, &["users", "disable", &session.user_id], None).await;

    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stdout.contains("1 sessions ended"), "{run:?}");
    refused_within_a_second(&b, &session.access_token).await;
    refused_within_a_second(&a, &session.access_token).await;
    // No hint: the right password is refused exactly like a wrong one.
    let right = a.login("ann@example.com", STRONG_PASSWORD).await;
    let right = assert_error(right, StatusCode::UNAUTHORIZED, "invalid_credentials").await;
    let wrong = a
        .login("ann@example.com", "not the right passphrase 9")
        .await;
    let wrong = assert_error(wrong, StatusCode::UNAUTHORIZED, "invalid_credentials").await;
    assert_eq!(right, wrong);
    let refresh = b.refresh(&session.refresh_token).await;
    assert_error(refresh, StatusCode::UNAUTHORIZED, "session_revoked").await;
    let shown = fields(&cli(&a.db, &["users", "show", &session.user_id], None).await);
    assert!(shown["disabled"].starts_with("since 20"), "{shown:?}");
    assert_eq!(shown["sessions"], "0");
    // Disabling twice is harmless.
    let again = cli(&a.db, &["users", "disable", &session.user_id], None).await;
    assert_eq!(again.code, 0, "{again:?}");
    assert!(again.stdout.contains("0 sessions ended"), "{again:?}");

    let run = cli(&a.db, &["users", "enable", &session.user_id], None).await;

    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(
        fields(&cli(&a.db, &["users", "show", &session.user_id], None).await)["disabled"],
        "no"
    );
    let login = b.login("ann@example.com", STRONG_PASSWORD).await;
    assert_eq!(login.status(), StatusCode::OK);
    // The sessions the disable ended stay ended.
    let refresh = a.refresh(&session.refresh_token).await;
    assert_error(refresh, StatusCode::UNAUTHORIZED, "session_revoked").await;

    let unknown = uuid::Uuid::now_v7().to_string();
    for command in ["disable", "enable"] {
        let run = cli(&a.db, &["users", command, &unknown], None).await;
        assert_eq!(run.code, 1, "{run:?}");
        assert!(
            run.stderr.contains(&format!("no user {unknown}")),
            "{run:?}"
        );
        let run = cli(&a.db, &["users", command, "ann@example.com"], None).await;
        assert_eq!(run.code, 2, "{run:?}");
        assert!(run.stderr.contains("invalid value"), "{run:?}");
    }
}

#[tokio::test]
async fn users_delete_removes_the_user_and_ends_their_sessions() {
    let app = spawn_app().await;
    let session = app.new_user_with_email("ann@example.com").await;
    let other = app.new_user().await;
    assert_eq!(app.me(&session.access_token).await.status(), StatusCode::OK);

    let run = cli(&app.db, &["users", "delete", &session.user_id], None).await;

    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stdout.contains("its 1 sessions"), "{run:?}");
    refused_within_a_second(&app, &session.access_token).await;
    assert_eq!(
        cli(&app.db, &["users", "show", &session.user_id], None)
            .await
            .code,
        1
    );
    let login = app.login("ann@example.com", STRONG_PASSWORD).await;
    assert_error(login, StatusCode::UNAUTHORIZED, "invalid_credentials").await;
    assert_eq!(app.me(&other.access_token).await.status(), StatusCode::OK);
    // The email is free again.
    app.new_user_with_email("ann@example.com").await;
    let again = cli(&app.db, &["users", "delete", &session.user_id], None).await;
    assert_eq!(again.code, 1, "{again:?}");
    assert!(again.stderr.contains("no user"), "{again:?}");
    assert_eq!(
        cli(&app.db, &["users", "delete", "yes"], None).await.code,
        2
    );
}

#[tokio::test]
async fn sessions_list_shows_a_users_live_sessions() {
    let app = spawn_app().await;
    let first = app.new_user_with_email("ann@example.com").await;
    let second = app
        .post("/v1/login")
        .header("user-agent", "Firefox\t(tabbed) 1.0")
        .json(&serde_json::json!({"email": "ann@example.com", "password": STRONG_PASSWORD}))
        .send()
        .await
        .unwrap();
    let second = Session::from_body(second.json().await.unwrap());

    let run = cli(
        &app.db,
        &["sessions", "list", "--user", &first.user_id],
        None,
    )
    .await;

    assert_eq!(run.code, 0, "{run:?}");
    let lines: Vec<Vec<&str>> = run
        .stdout
        .lines()
        .map(|l| l.split('\t').collect())
        .collect();
    assert_eq!(lines.len(), 2, "{run:?}");
    // Newest first: id, kind, created, last seen, ip, user agent.
    assert_eq!(lines[0][0], second.session_id);
    assert_eq!(lines[1][0], first.session_id);
    for line in &lines {
        assert_eq!(line.len(), 6, "{run:?}");
        assert_eq!(line[1], "password");
        assert!(line[2].ends_with('Z') && line[3].ends_with('Z'), "{run:?}");
        assert_eq!(line[4], "127.0.0.1");
    }
    assert_eq!(
        lines[0][5], "Firefox (tabbed) 1.0",
        "tabs in a user agent cannot break columns"
    );
    app.logout(&second.access_token, None).await;
    let run = cli(
        &app.db,
        &["sessions", "list", "--user", &first.user_id],
        None,
    )
    .await;
    assert_eq!(run.stdout.lines().count(), 1, "{run:?}");
    assert!(run.stdout.starts_with(&first.session_id), "{run:?}");

    let unknown = uuid::Uuid::now_v7().to_string();
    let run = cli(&app.db, &["sessions", "list", "--user", &unknown], None).await;
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.stderr.contains("no user"), "{run:?}");
    let run = cli(
        &app.db,
        &["sessions", "list", "--user", "ann@example.com"],
        None,
    )
    .await;
    assert_eq!(run.code, 2, "{run:?}");
    let run = cli(&app.db, &["sessions", "list", &first.user_id], None).await;
    assert_eq!(run.code, 2, "{run:?}");
}

#[tokio::test]
async fn keys_retire_stops_a_key_everywhere_at_once_and_sessions_refresh_onto_the_new_key() {
    let a = spawn_app().await;
    let b = spawn_on(a.db.clone(), |_| {}).await;
    crate::helpers::until_listening(&a).await;
    crate::helpers::until_listening(&b).await;
    let session = a.new_user().await;
    let old_kid = kid_of(&session.access_token);
    for app in [&a, &b] {
        // Verified once: the token is in each instance's verified-token cache.
        assert_eq!(app.me(&session.access_token).await.status(), StatusCode::OK);
        assert!(jwks_kids(app).await.contains(&old_kid));
    }

    let run = cli(&a.db, &["keys", "retire", &old_kid], None).await;

    assert_eq!(run.code, 0, "{run:?}");
    let new_kid = run.stdout.trim().rsplit(' ').next().unwrap().to_string();
    assert!(run.stdout.contains("new active key"), "{run:?}");
    assert_ne!(new_kid, old_kid);
    refused_within_a_second(&b, &session.access_token).await;
    refused_within_a_second(&a, &session.access_token).await;
    for app in [&a, &b] {
        let kids = jwks_kids(app).await;
        assert!(!kids.contains(&old_kid), "{kids:?}");
        assert!(kids.contains(&new_kid), "{kids:?}");
        let introspected = app.me(&session.access_token).await;
        assert_error(introspected, StatusCode::UNAUTHORIZED, "invalid_token").await;
    }
    // The session itself goes on: a refresh gets a token signed by the new key.
    let refreshed = b.refresh_ok(&session.refresh_token).await;
    assert_eq!(kid_of(&refreshed.access_token), new_kid);
    for app in [&a, &b] {
        assert_eq!(
            app.me(&refreshed.access_token).await.status(),
            StatusCode::OK
        );
    }
    let listed = cli(&a.db, &["keys", "list"], None).await;
    assert!(
        listed
            .stdout
            .lines()
            .any(|l| l.starts_with(&old_kid) && l.contains("\trevoked\t")),
        "{listed:?}"
    );
    assert!(
        listed
            .stdout
            .lines()
            .any(|l| l.starts_with(&new_kid) && l.contains("\tactive\t")),
        "{listed:?}"
    );

    let again = cli(&a.db, &["keys", "retire", &old_kid], None).await;
    assert_eq!(again.code, 0, "{again:?}");
    assert!(again.stdout.contains("already revoked"), "{again:?}");
    let unknown = cli(&a.db, &["keys", "retire", "no-such-kid"], None).await;
    assert_eq!(unknown.code, 1, "{unknown:?}");
    assert!(
        unknown.stderr.contains("no signing key no-such-kid"),
        "{unknown:?}"
    );
}

#[tokio::test]
async fn retiring_a_rotated_out_key_keeps_the_active_key() {
    let app = spawn_app().await;
    let session = app.new_user().await;
    let old_kid = kid_of(&session.access_token);
    let rotate = cli(&app.db, &["keys", "rotate"], None).await;
    assert_eq!(rotate.code, 0, "{rotate:?}");
    let active = rotate.stdout.trim().rsplit(' ').next().unwrap().to_string();
    // A rotated-out key still verifies its tokens...
    assert_eq!(app.me(&session.access_token).await.status(), StatusCode::OK);

    let run = cli(&app.db, &["keys", "retire", &old_kid], None).await;

    // ...a retired (revoked) one does not, and the active key is unchanged.
    assert_eq!(run.code, 0, "{run:?}");
    assert!(
        run.stdout.contains("the active key is unchanged"),
        "{run:?}"
    );
    refused_within_a_second(&app, &session.access_token).await;
    let refreshed = app.refresh(&session.refresh_token).await;
    let refreshed = Session::from_body(refreshed.json().await.unwrap());
    assert_eq!(kid_of(&refreshed.access_token), active);
}

#[tokio::test]
async fn sessions_revoke_ends_one_session_and_is_audited_as_the_cli() {
    let app = spawn_app().await;
    let ended = app.new_user_with_email("ann@example.com").await;
    let kept = app.login("ann@example.com", STRONG_PASSWORD).await;
    let kept = Session::from_body(kept.json().await.unwrap());

    let run = cli(&app.db, &["sessions", "revoke", &ended.session_id], None).await;

    assert_eq!(run.code, 0, "{run:?}");
    refused_within_a_second(&app, &ended.access_token).await;
    assert_eq!(app.me(&kept.access_token).await.status(), StatusCode::OK);
    let trail = app
        .store
        .audit_events(Some(&ended.user_id), 10)
        .await
        .unwrap();
    let revoked = trail
        .iter()
        .find(|e| e.kind == "admin_revoked_sessions")
        .expect("the revocation is audited");
    assert_eq!(revoked.detail["service"], "cli");
    assert_eq!(
        revoked.session_id.as_deref(),
        Some(ended.session_id.as_str())
    );
    assert_eq!(revoked.user_agent.as_deref(), Some("sessiond-cli"));
    // Disable, enable and delete are audited the same way, naming the CLI as the caller.
    for command in ["disable", "enable", "delete"] {
        let run = cli(&app.db, &["users", command, &ended.user_id], None).await;
        assert_eq!(run.code, 0, "{command}: {run:?}");
    }
    let kinds: Vec<(String, Value)> = app
        .store
        .audit_events(Some(&ended.user_id), 10)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.detail["service"] == "cli")
        .map(|e| (e.kind, e.detail))
        .collect();
    let names: Vec<&str> = kinds.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        names,
        [
            "admin_deleted_user",
            "admin_enabled_user",
            "admin_disabled_user",
            "admin_revoked_sessions"
        ]
    );

    let again = cli(&app.db, &["sessions", "revoke", &ended.session_id], None).await;
    assert_eq!(again.code, 1, "{again:?}");
    assert!(again.stderr.contains("no live session"), "{again:?}");
}
