//! `sessiond service-keys …`: keys for trusted backends.

use clap::Subcommand;
use secrecy::ExposeSecret;

use super::CliError;
use crate::clock::{self, Clock};
use crate::credentials::service_keys::Scope;
use crate::store::Store;

#[derive(Subcommand)]
pub enum ServiceKeysCommand {
    /// Create a key and print it once; only its SHA-256 is stored.
    #[command(after_long_help = "Example:\n  \
        sessiond service-keys create api --scope introspect\n  \
        sessiond service-keys create backoffice --scope admin --scope events")]
    Create {
        name: String,
        /// introspect, admin and/or events (repeat the flag for several)
        #[arg(long = "scope", required = true)]
        scopes: Vec<String>,
    },
    /// List keys (names and scopes, never the keys).
    #[command(after_long_help = "Example:\n  sessiond service-keys list")]
    List,
    /// Revoke a key by name: it gets 401 at once, and its open event streams end within a
    /// second on every instance.
    #[command(after_long_help = "Example:\n  sessiond service-keys revoke api")]
    Revoke { name: String },
}

pub async fn run(
    command: ServiceKeysCommand,
    store: &Store,
    clock: &Clock,
) -> Result<(), CliError> {
    match command {
        ServiceKeysCommand::Create { name, scopes } => {
            let scopes = scopes
                .iter()
                .map(|s| {
                    Scope::parse(s).ok_or_else(|| {
                        CliError::Usage(format!(
                            "unknown scope {s} (expected introspect, admin or events)"
                        ))
                    })
                })
                .collect::<Result<Vec<_>, _>>()?;
            let (key, row) =
                crate::credentials::service_keys::generate(&name, &scopes, clock.now());
            if !store.insert_service_key(&row).await? {
                return Err(anyhow::anyhow!("a service key named {name} exists already").into());
            }
            println!("{}", key.expose_secret());
            eprintln!(
                "service key {name} created ({}); it is shown only this once",
                row.scopes
            );
        }
        ServiceKeysCommand::List => {
            for key in store.service_keys().await? {
                let state = if key.revoked_at.is_some() {
                    "revoked"
                } else {
                    "active"
                };
                println!(
                    "{}\t{}\t{}\tcreated {}",
                    key.name,
                    key.scopes,
                    state,
                    clock::rfc3339(key.created_at)
                );
            }
        }
        ServiceKeysCommand::Revoke { name } => {
            if !store.revoke_service_key(&name, clock.now()).await? {
                return Err(anyhow::anyhow!("no active service key named {name}").into());
            }
            println!("revoked {name}");
        }
    }
    Ok(())
}
