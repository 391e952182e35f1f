//! `sessiond users …`: accounts, as an operator manages them.

use std::io::{BufRead, IsTerminal};

use clap::Subcommand;
use secrecy::SecretString;
use uuid::Uuid;

use super::{CliError, cli_client, services};
use crate::clock::{self, Clock};
use crate::config::Settings;
use crate::domain::{Email, UserId};
use crate::error::Error;
use crate::services::admin::AdminCaller;
use crate::store::{Account, Store};

#[derive(Subcommand)]
pub enum UsersCommand {
    /// Create a user; the password is read from standard input, never from the command line.
    #[command(
        long_about = "Create a permanent user with a password. The password is read from the \
                      first line of standard input (never from the command line, where other \
                      users of the machine could see it) and must pass the same rules as signup: \
                      8 to 1024 characters, not too easy to guess. Prints the new user's id. The \
                      user has no session until they log in.",
        after_long_help = "Example:\n  \
            printf '%s\\n' \"$PASSWORD\" | sessiond users create ann@example.com"
    )]
    Create {
        /// The email address (normalized as signup does: trimmed, NFC, lowercased).
        #[arg(value_parser = parse_email)]
        email: Email,
    },
    /// Show a user: id, email, guest flag, creation, disabled state, live sessions.
    #[command(
        long_about = "Show a user found by email or id: id, email, is_guest, created_at, \
                      disabled (no, or since when) and the number of live sessions, one \
                      `name value` pair per line. Never the password hash.",
        after_long_help = "Example:\n  \
            sessiond users show ann@example.com\n  \
            sessiond users show 0190c5d6-a1b2-7c3e-9f0a-4b5c6d7e8f90"
    )]
    Show {
        /// An email address or a user id (a UUID).
        #[arg(value_name = "EMAIL|ID", value_parser = parse_user_ref)]
        user: UserRef,
    },
    /// Disable a user: no login, refresh or bridge; every session of theirs ends now.
    #[command(
        long_about = "Disable a user. They can no longer log in (401 invalid_credentials, as \
                      for a wrong password), refresh (401 session_revoked) or use the bridge \
                      (403 forbidden), and every live session of theirs is revoked (reason \
                      admin) in the same transaction: running instances refuse their tokens \
                      within a second. `users enable` undoes it; the ended sessions stay ended.",
        after_long_help = "Example:\n  sessiond users disable 0190c5d6-a1b2-7c3e-9f0a-4b5c6d7e8f90"
    )]
    Disable {
        /// The user's id (a UUID).
        user_id: Uuid,
    },
    /// Enable a disabled user: they may log in again.
    #[command(
        after_long_help = "Example:\n  sessiond users enable 0190c5d6-a1b2-7c3e-9f0a-4b5c6d7e8f90"
    )]
    Enable {
        /// The user's id (a UUID).
        user_id: Uuid,
    },
    /// Delete a user with their sessions and tokens.
    #[command(
        long_about = "Delete a user with their sessions, refresh tokens and tickets, as the \
                      admin API's DELETE /v1/admin/users/{id} does. Running instances refuse \
                      their tokens within a second. This cannot be undone.",
        after_long_help = "Example:\n  sessiond users delete 0190c5d6-a1b2-7c3e-9f0a-4b5c6d7e8f90"
    )]
    Delete {
        /// The user's id (a UUID).
        user_id: Uuid,
    },
    /// End every session of a user (they may log in again).
    #[command(after_long_help = "Example:\n  \
            sessiond users revoke-sessions 0190c5d6-a1b2-7c3e-9f0a-4b5c6d7e8f90")]
    RevokeSessions {
        /// The user's id (a UUID).
        user_id: Uuid,
    },
}

/// A user named on the command line, by email or by id.
#[derive(Debug, Clone)]
pub enum UserRef {
    Id(Uuid),
    Email(Email),
}

fn parse_email(raw: &str) -> Result<Email, String> {
    Email::parse(raw).map_err(|e| e.to_string())
}

fn parse_user_ref(raw: &str) -> Result<UserRef, String> {
    if raw.contains('@') {
        return parse_email(raw).map(UserRef::Email);
    }
    Uuid::parse_str(raw.trim())
        .map(UserRef::Id)
        .map_err(|_| "expected an email address or a user id (a UUID)".to_string())
}

pub async fn run(
    command: UsersCommand,
    settings: &Settings,
    store: &Store,
    clock: &Clock,
) -> Result<(), CliError> {
    if let UsersCommand::Show { user } = command {
        return show(settings, store, user, clock.now()).await;
    }
    // What changes state goes through the same service as the admin API, as the caller "cli":
    // it audits, ends sessions and announces exactly as a request would.
    let admin = services(settings, store, clock).await?.admin;
    let client = cli_client();
    let by = &AdminCaller {
        service: "cli",
        client: &client,
    };
    match command {
        UsersCommand::Show { .. } => unreachable!("answered above"),
        UsersCommand::Create { email } => {
            let password = read_password(&email)?;
            let user =
                admin
                    .create_user(&email, password, by)
                    .await
                    .map_err(|error| match error {
                        Error::WeakPassword(why) => {
                            CliError::Usage(format!("the password was refused: {why}"))
                        }
                        Error::EmailTaken => CliError::Failed(anyhow::anyhow!(
                            "an account with the email {} exists already",
                            email.as_str()
                        )),
                        other => other.into(),
                    })?;
            println!("{}", user.id);
            eprintln!("created user {} ({})", email.as_str(), user.id);
        }
        UsersCommand::Disable { user_id } => {
            let user_id = UserId::trusted(user_id.to_string());
            let ended = admin
                .disable_user(&user_id, by)
                .await
                .map_err(unknown(&user_id))?;
            println!("disabled {user_id}; {} sessions ended", ended.len());
        }
        UsersCommand::Enable { user_id } => {
            let user_id = UserId::trusted(user_id.to_string());
            admin
                .enable_user(&user_id, by)
                .await
                .map_err(unknown(&user_id))?;
            println!("enabled {user_id}");
        }
        UsersCommand::Delete { user_id } => {
            let user_id = UserId::trusted(user_id.to_string());
            let ended = admin
                .delete_user(&user_id, by)
                .await
                .map_err(unknown(&user_id))?;
            println!("deleted {user_id} and its {} sessions", ended.len());
        }
        UsersCommand::RevokeSessions { user_id } => {
            let user_id = UserId::trusted(user_id.to_string());
            let ended = admin
                .revoke_user_sessions(&user_id, by)
                .await
                .map_err(unknown(&user_id))?;
            // Running instances drop these at once (PostgreSQL: announced by a trigger when
            // this commits) or within a second (SQLite).
            println!("revoked {} sessions", ended.len());
        }
    }
    Ok(())
}

/// A service error for a command about `user`: "no user …" when it does not exist.
fn unknown(user: &str) -> impl FnOnce(Error) -> CliError + '_ {
    move |error| match error {
        Error::NotFound(_) => no_user(user),
        other => other.into(),
    }
}

fn no_user(user: &str) -> CliError {
    CliError::Failed(anyhow::anyhow!("no user {user}"))
}

/// The first line of standard input, without its line ending. On a terminal the typing is
/// hidden (with `stty`, where there is one).
fn read_password(email: &Email) -> Result<SecretString, CliError> {
    let stdin = std::io::stdin();
    let terminal = stdin.is_terminal();
    if terminal {
        eprint!("password for {}: ", email.as_str());
        set_echo(false);
    }
    let mut line = String::new();
    let read = stdin.lock().read_line(&mut line);
    if terminal {
        set_echo(true);
        eprintln!();
    }
    read.map_err(|e| CliError::Failed(anyhow::anyhow!("cannot read the password: {e}")))?;
    let password = line
        .strip_suffix('\n')
        .map(|l| l.strip_suffix('\r').unwrap_or(l))
        .unwrap_or(&line);
    if password.is_empty() {
        return Err(CliError::Usage(
            "no password on standard input (pipe it in: printf '%s\\n' \"$PASSWORD\" | sessiond users create EMAIL)".into(),
        ));
    }
    Ok(SecretString::from(password.to_string()))
}

fn set_echo(on: bool) {
    let _ = std::process::Command::new("stty")
        .arg(if on { "echo" } else { "-echo" })
        .stdin(std::process::Stdio::inherit())
        .status();
}

async fn show(settings: &Settings, store: &Store, user: UserRef, now: i64) -> Result<(), CliError> {
    let account: Option<Account> = match &user {
        UserRef::Id(id) => store.find_account(&id.to_string()).await?,
        UserRef::Email(email) => store.find_account_by_email(email.as_str()).await?,
    };
    let account = account.ok_or_else(|| match &user {
        UserRef::Id(id) => no_user(&id.to_string()),
        UserRef::Email(email) => no_user(email.as_str()),
    })?;
    let idle = settings.sessions.idle_timeout_secs;
    let live = store.list_live_sessions(&account.id, now, idle).await?;
    let disabled = match account.disabled_at {
        Some(at) => format!("since {}", clock::rfc3339(at)),
        None => "no".into(),
    };
    println!("id          {}", account.id);
    println!("email       {}", account.email.as_deref().unwrap_or("-"));
    println!("is_guest    {}", account.is_guest);
    println!("created_at  {}", clock::rfc3339(account.created_at));
    println!("disabled    {disabled}");
    println!("sessions    {}", live.len());
    Ok(())
}
