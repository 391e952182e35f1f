//! `sessiond keys …`: the signing keys of access tokens.

use clap::Subcommand;

use super::CliError;
use crate::clock;
use crate::store::{KeyRevocation, Store};
use crate::tokens;

#[derive(Subcommand)]
pub enum KeysCommand {
    /// List signing keys (never their private parts).
    #[command(
        long_about = "List signing keys, newest first: kid, algorithm, state and creation time. \
                      active: signs new tokens; retired: replaced by a rotation, still verifies \
                      until the tokens it signed expire; revoked: verifies nothing (keys retire).",
        after_long_help = "Example:\n  sessiond keys list"
    )]
    List,
    /// Make a new active key; the old one keeps verifying until its tokens expire.
    #[command(after_long_help = "Example:\n  sessiond keys rotate")]
    Rotate,
    /// Emergency: revoke a key now; it stops verifying on every instance.
    #[command(
        long_about = "Emergency (a leaked private key): revoke a signing key now. It stops \
                      verifying and leaves the JWKS at once; running instances drop it within a \
                      second (PostgreSQL announces it, SQLite instances poll). If it was the \
                      active key, a new active key is made in the same transaction. Sessions are \
                      not ended: an access token it signed is refused (401 invalid_token), and \
                      the client's next refresh gets one signed by the active key. For a routine \
                      change use `keys rotate`.",
        after_long_help = "Example:\n  \
            sessiond keys list\n  \
            sessiond keys retire 0190c5d6a1b27c3e9f0a4b5c6d7e8f90"
    )]
    Retire {
        /// The key id (`kid`) as `keys list` shows it.
        kid: String,
    },
}

pub async fn run(command: KeysCommand, store: &Store) -> Result<(), CliError> {
    match command {
        KeysCommand::List => {
            for key in store.all_signing_keys().await? {
                let state = match (key.active, key.revoked_at) {
                    (_, Some(_)) => "revoked",
                    (Some(_), None) => "active",
                    (None, None) => "retired",
                };
                println!(
                    "{}\t{}\t{}\tcreated {}",
                    key.kid,
                    key.alg,
                    state,
                    clock::rfc3339(key.created_at)
                );
            }
        }
        KeysCommand::Rotate => {
            let now = clock::now();
            let key = tokens::keys::generate_key(now)?;
            store.rotate_signing_key(&key, now).await?;
            println!("new active key {}", key.kid);
        }
        KeysCommand::Retire { kid } => {
            let now = clock::now();
            let replacement = tokens::keys::generate_key(now)?;
            match store.revoke_signing_key(&kid, &replacement, now).await? {
                KeyRevocation::ActiveReplaced => {
                    println!("revoked {kid}; new active key {}", replacement.kid)
                }
                KeyRevocation::Revoked => println!("revoked {kid}; the active key is unchanged"),
                KeyRevocation::AlreadyRevoked => println!("{kid} was already revoked"),
                KeyRevocation::Unknown => {
                    return Err(
                        anyhow::anyhow!("no signing key {kid} (see `sessiond keys list`)").into(),
                    );
                }
            }
            eprintln!(
                "running instances refuse its tokens within a second; sessions keep working \
                 through refresh, with tokens signed by the active key"
            );
        }
    }
    Ok(())
}
