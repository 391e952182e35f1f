//! `sessiond sessions …`: a user's live sessions, and ending one.

use clap::Subcommand;
use uuid::Uuid;

use super::{CliError, cell, cli_client, services};
use crate::clock::{self, Clock};
use crate::config::Settings;
use crate::domain::SessionId;
use crate::error::Error;
use crate::services::admin::AdminCaller;
use crate::store::Store;

#[derive(Subcommand)]
pub enum SessionsCommand {
    /// List a user's live sessions (devices), newest first.
    #[command(
        long_about = "List a user's live sessions (neither revoked nor expired), newest first: \
                      one line per session with tab-separated columns id, kind, created, last \
                      seen, IP address, user agent (`-` when unknown). A bridge session's kind \
                      is bridge:<provider>.",
        after_long_help = "Example:\n  \
            sessiond sessions list --user 0190c5d6-a1b2-7c3e-9f0a-4b5c6d7e8f90"
    )]
    List {
        /// The user's id (a UUID).
        #[arg(long = "user", value_name = "ID")]
        user_id: Uuid,
    },
    /// End one session (its user may sign in again).
    #[command(
        long_about = "End one live session, whoever's it is, as the owner's own revocation \
                      would (reason admin on the event feed): running instances refuse its \
                      tokens within a second. The other sessions of its user go on.",
        after_long_help = "Example:\n  \
            sessiond sessions revoke 0190c5d6-a1b2-7c3e-9f0a-4b5c6d7e8f91"
    )]
    Revoke {
        /// The session's id (a UUID).
        session_id: Uuid,
    },
}

pub async fn run(
    command: SessionsCommand,
    settings: &Settings,
    store: &Store,
    clock: &Clock,
) -> Result<(), CliError> {
    match command {
        SessionsCommand::Revoke { session_id } => {
            let session_id = SessionId::trusted(session_id.to_string());
            let admin = services(settings, store, clock).await?.admin;
            let client = cli_client();
            let by = AdminCaller {
                service: "cli",
                client: &client,
            };
            match admin.revoke_session(&session_id, &by).await {
                Ok(()) => println!("revoked {session_id}"),
                Err(Error::NotFound(_)) => {
                    return Err(anyhow::anyhow!("no live session {session_id}").into());
                }
                Err(error) => return Err(error.into()),
            }
        }
        SessionsCommand::List { user_id } => {
            let user_id = user_id.to_string();
            if store.find_account(&user_id).await?.is_none() {
                return Err(anyhow::anyhow!("no user with id {user_id}").into());
            }
            let idle = settings.sessions.idle_timeout_secs;
            let sessions = store
                .list_live_sessions(&user_id, clock.now(), idle)
                .await?;
            for session in &sessions {
                let kind = match &session.provider {
                    Some(provider) => format!("{}:{provider}", session.kind),
                    None => session.kind.clone(),
                };
                println!(
                    "{}\t{}\t{}\t{}\t{}\t{}",
                    session.id,
                    kind,
                    clock::rfc3339(session.created_at),
                    clock::rfc3339(session.last_seen_at),
                    cell(session.ip_address.as_deref()),
                    cell(session.user_agent.as_deref()),
                );
            }
            if sessions.is_empty() {
                eprintln!("user {user_id} has no live sessions");
            }
        }
    }
    Ok(())
}
