//! `sessiond throttle …`: the per-account login throttle (`crate::limits::throttle`).

use clap::Subcommand;

use super::CliError;
use crate::config::Settings;
use crate::domain::Email;
use crate::limits::throttle::LoginThrottle;
use crate::store::Store;

#[derive(Subcommand)]
pub enum ThrottleCommand {
    /// Forget an account's failed logins from every address, so its owner can sign in now.
    #[command(after_long_help = "Example:\n  sessiond throttle clear ann@example.com")]
    Clear {
        /// The email the attempts were made with (any, whether or not an account has it).
        email: String,
    },
}

pub async fn run(
    command: ThrottleCommand,
    settings: &Settings,
    store: &Store,
) -> Result<(), CliError> {
    match command {
        ThrottleCommand::Clear { email } => {
            // The throttle counts the email as typed, normalized like an account's.
            let account = Email::parse(&email)
                .map(|e| e.as_str().to_string())
                .unwrap_or_else(|_| email.trim().to_lowercase());
            let cleared = LoginThrottle::new(store.clone(), settings.throttle.clone())
                .clear(&account)
                .await?;
            println!("cleared {cleared} throttle entries for {account}");
        }
    }
    Ok(())
}
