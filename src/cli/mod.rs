//! The `sessiond` command line: `serve` (the default) and the operator's commands. Each command
//! connects to the configured database (`DATABASE_URL`), applies pending migrations, does one
//! thing and exits: 0 when it was done, 2 for bad arguments (clap's own usage errors too), 1
//! when it could not be done (unknown user or key, email taken, database unreachable).
//! Results go to stdout, messages and logs to stderr.

mod config;
mod keys;
mod service_keys;
mod sessions;
mod throttle;
mod users;

use clap::{Parser, Subcommand};

use crate::clock::Clock;
use crate::config::Settings;
use crate::startup::compose::Core;
use crate::store::Store;

pub use config::{ConfigCommand, check_config};
pub use keys::KeysCommand;
pub use service_keys::ServiceKeysCommand;
pub use sessions::SessionsCommand;
pub use throttle::ThrottleCommand;
pub use users::UsersCommand;

#[derive(Parser)]
#[command(
    version,
    about = "Session and authentication service",
    long_about = "Session and authentication service. Without a command it serves HTTP. \
                  Every command reads the same configuration as the service (config/default.toml, \
                  config/$SESSIOND_ENV.toml, SESSIOND__* variables, DATABASE_URL and PORT).",
    after_long_help = "Examples:\n  \
        DATABASE_URL=postgres://sessiond:secret@db/sessiond sessiond serve\n  \
        sessiond users show ann@example.com\n  \
        sessiond keys retire 0190c5d6a1b27c3e9f0a4b5c6d7e8f90"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Subcommand)]
pub enum Command {
    /// Run the HTTP service (migrations are applied first).
    #[command(
        long_about = "Run the HTTP service (migrations are applied first). On SIGTERM or SIGINT \
                      /readyz turns 503 while requests are still served for \
                      server.shutdown_drain_secs, then the listener closes and requests in \
                      flight get server.shutdown_timeout_secs to finish.",
        after_long_help = "Example:\n  \
            DATABASE_URL=postgres://sessiond:secret@db:5432/sessiond PORT=8080 sessiond serve"
    )]
    Serve,
    /// Apply pending database migrations and exit.
    #[command(
        after_long_help = "Example:\n  DATABASE_URL=sqlite://data/sessiond.db sessiond migrate"
    )]
    Migrate,
    /// Signing keys: list, rotate, retire (revoke) a key.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Users: create, show, disable, enable, delete, revoke their sessions.
    #[command(subcommand)]
    Users(UsersCommand),
    /// Sessions: list a user's live sessions, end one.
    #[command(subcommand)]
    Sessions(SessionsCommand),
    /// Keys for trusted backends (introspection, ticket redemption, admin API, events).
    #[command(subcommand, name = "service-keys")]
    ServiceKeys(ServiceKeysCommand),
    /// The per-account login throttle: clear an account's failed logins.
    #[command(subcommand)]
    Throttle(ThrottleCommand),
    /// The configuration: check it.
    #[command(subcommand)]
    Config(ConfigCommand),
}

/// Why a command failed, and so its exit status.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// Bad input (an invalid email, a weak password): exit status 2, as for clap's own errors.
    #[error("{0}")]
    Usage(String),
    /// The command could not do what it was asked: exit status 1.
    #[error(transparent)]
    Failed(#[from] anyhow::Error),
}

impl CliError {
    pub fn exit_code(&self) -> i32 {
        match self {
            CliError::Usage(_) => 2,
            CliError::Failed(_) => 1,
        }
    }
}

impl From<crate::credentials::passwords::HashError> for CliError {
    fn from(error: crate::credentials::passwords::HashError) -> Self {
        CliError::Failed(error.into())
    }
}

impl From<crate::error::Error> for CliError {
    fn from(error: crate::error::Error) -> Self {
        use crate::error::Error;
        match error {
            Error::InvalidEmail(why) => CliError::Usage(why.to_string()),
            Error::WeakPassword(why) => CliError::Usage(why),
            other => CliError::Failed(other.into()),
        }
    }
}

impl From<crate::store::StoreError> for CliError {
    fn from(error: crate::store::StoreError) -> Self {
        CliError::Failed(error.into())
    }
}

/// Runs one operator command (anything but `serve`).
pub async fn run(command: Command, settings: Settings) -> Result<(), CliError> {
    // Operator commands run on the system clock, read through the same type as the service's.
    let clock = &Clock::system();
    match command {
        Command::Serve => Err(CliError::Failed(anyhow::anyhow!(
            "serve is not an operator command"
        ))),
        Command::Migrate => {
            connect(&settings).await?;
            eprintln!("migrations applied");
            Ok(())
        }
        Command::Keys(command) => {
            keys::run(command, &settings, &connect(&settings).await?, clock).await
        }
        Command::Throttle(command) => {
            throttle::run(command, &settings, &connect(&settings).await?).await
        }
        Command::Config(ConfigCommand::Check) => {
            std::process::exit(check_config());
        }
        Command::Users(command) => {
            users::run(command, &settings, &connect(&settings).await?, clock).await
        }
        Command::Sessions(command) => {
            sessions::run(command, &settings, &connect(&settings).await?, clock).await
        }
        Command::ServiceKeys(command) => {
            service_keys::run(command, &connect(&settings).await?, clock).await
        }
    }
}

/// Connects to the configured database and applies pending migrations.
async fn connect(settings: &Settings) -> anyhow::Result<Store> {
    let store = Store::connect(&settings.database).await.map_err(|e| {
        anyhow::anyhow!(
            "cannot reach the database at {}: {e:#}",
            settings.database.redacted_url()
        )
    })?;
    store.migrate().await?;
    Ok(store)
}

/// The client an operator's audit events are recorded with.
pub(crate) fn cli_client() -> crate::domain::ClientInfo {
    crate::domain::ClientInfo {
        user_agent: Some("sessiond-cli".into()),
        ip_address: None,
    }
}

/// The services, composed as the server composes them, for a command that changes state.
pub(crate) async fn services(
    settings: &Settings,
    store: &Store,
    clock: &Clock,
) -> anyhow::Result<crate::services::Services> {
    let core = Core::build(settings.clone(), store.clone(), clock.clone()).await?;
    Ok(core.services())
}

/// A value for tab-separated output: `-` when missing, control characters (a tab in a user
/// agent) as spaces, so that a column never splits or spills onto another line.
fn cell(value: Option<&str>) -> String {
    match value.filter(|v| !v.is_empty()) {
        Some(v) => v
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect(),
        None => "-".into(),
    }
}
