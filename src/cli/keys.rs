//! `sessiond keys …`: the signing keys of access tokens.

use clap::Subcommand;

use super::CliError;
use crate::clock::{self, Clock};
use crate::config::Settings;
use crate::credentials::tokens;
use crate::credentials::tokens::sealing::KeyEncryption;
use crate::store::{KeyRevocation, Store};

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
    #[command(
        long_about = "Make a new active key; the old one keeps verifying until its tokens \
                      expire. The new key is sealed under keys.encryption_key; without it, a \
                      database whose keys are sealed is refused (no plaintext key is added).",
        after_long_help = "Example:\n  sessiond keys rotate"
    )]
    Rotate,
    /// Emergency: revoke a key now; it stops verifying on every instance.
    #[command(
        long_about = "Emergency (a leaked private key): revoke a signing key now. It stops \
                      verifying and leaves the JWKS at once; running instances drop it within a \
                      second (PostgreSQL announces it, SQLite instances poll). If it was the \
                      active key, a new active key is made in the same transaction. Sessions are \
                      not ended: an access token it signed is refused (401 invalid_token), and \
                      the client's next refresh gets one signed by the active key. The event \
                      feed announces it as `key.retired` with its kid, so JWKS verifiers that \
                      follow the feed drop it at once. For a routine change use `keys rotate`.",
        after_long_help = "Example:\n  \
            sessiond keys list\n  \
            sessiond keys retire 0190c5d6a1b27c3e9f0a4b5c6d7e8f90"
    )]
    Retire {
        /// The key id (`kid`) as `keys list` shows it.
        kid: String,
    },
    /// Seal every private key under keys.encryption_key.
    #[command(
        long_about = "Seal every private key under keys.encryption_key: rows stored before it \
                      was set (plain PKCS#8; the service also seals those at start), rows sealed \
                      by an earlier version, and rows sealed under an old encryption key listed \
                      in keys.old_encryption_keys (after a rotation of the encryption key). \
                      Tokens the keys signed keep verifying. Safe to run while serving.",
        after_long_help = "Example:\n  \
            SESSIOND__KEYS__ENCRYPTION_KEY=$(openssl rand -base64 32) sessiond keys seal"
    )]
    Seal,
}

pub async fn run(
    command: KeysCommand,
    settings: &Settings,
    store: &Store,
    clock: &Clock,
) -> Result<(), CliError> {
    let sealing = KeyEncryption::from_settings(&settings.keys)?;
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
            let now = clock.now();
            let key = tokens::keys::new_signing_key(store, &sealing, now).await?;
            store.rotate_signing_key(&key, now).await?;
            println!("new active key {}", key.kid);
        }
        KeysCommand::Retire { kid } => {
            let now = clock.now();
            let replacement = tokens::keys::new_signing_key(store, &sealing, now).await?;
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
        KeysCommand::Seal => {
            if !sealing.configured() {
                return Err(CliError::Usage(
                    "set keys.encryption_key (SESSIOND__KEYS__ENCRYPTION_KEY) to seal keys".into(),
                ));
            }
            let mut sealed = 0;
            for key in store.all_signing_keys().await? {
                if sealing.is_current(&key.private_der) {
                    continue;
                }
                let binding = tokens::keys::binding(&key);
                let pkcs8 = if tokens::sealing::is_sealed(&key.private_der) {
                    sealing.open(binding, &key.private_der)?
                } else {
                    key.private_der.clone()
                };
                let stored = sealing.seal(binding, &pkcs8)?;
                if store
                    .replace_private_key(&key.kid, &key.private_der, &stored)
                    .await?
                {
                    sealed += 1;
                }
            }
            println!("sealed {sealed} signing keys under the current encryption key");
        }
    }
    Ok(())
}
