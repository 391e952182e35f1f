//! The session bridge: a verified third-party token is exchanged for a local session of the
//! user linked to its issuer and subject (created on first use).

use std::sync::Arc;

use secrecy::{ExposeSecret, SecretString};
use serde_json::json;

use super::accounts::subject;
use super::credentials::CredentialChecks;
use super::sessions::{Issued, Sessions};
use crate::clock::Clock;
use crate::credentials::bridge::{Bridge, VerifiedIdentity};
use crate::domain::User;
use crate::domain::{ClientInfo, Email, SessionKind, UserId};
use crate::error::{Error, Result};
use crate::observability::audit::{AuditLog, Event};
use crate::store::{Precondition, Store};

/// Signs in with a third party's token.
pub struct BridgeSignIn {
    bridge: Arc<Bridge>,
    checks: Arc<CredentialChecks>,
    sessions: Arc<Sessions>,
    store: Store,
    clock: Clock,
    audit: AuditLog,
}

impl BridgeSignIn {
    pub fn new(
        bridge: Arc<Bridge>,
        checks: Arc<CredentialChecks>,
        sessions: Arc<Sessions>,
        store: Store,
        clock: Clock,
        audit: AuditLog,
    ) -> BridgeSignIn {
        BridgeSignIn {
            bridge,
            checks,
            sessions,
            store,
            clock,
            audit,
        }
    }

    #[tracing::instrument(name = "bridge", skip_all, fields(provider = %provider))]
    pub async fn bridge(
        &self,
        provider: &str,
        token: &SecretString,
        client: &ClientInfo,
    ) -> Result<Issued> {
        self.checks.attempt(client)?;
        let identity = self.bridge.verify(provider, token.expose_secret()).await?;
        let user = self.local_user(&identity).await?;
        let kind = SessionKind::Bridge(&identity.provider);
        let opened = self
            .sessions
            .open_session(Precondition::EnabledUser, &user, kind, client)
            .await?;
        let Some(issued) = opened else {
            tracing::info!(user_id = %user.id, "bridge refused: the user is disabled");
            let detail = json!({ "provider": identity.provider, "disabled": true });
            let subject = subject(Some(&user.id), None, client);
            self.audit
                .record(Event::BridgeRefused, subject, detail)
                .await;
            return Err(Error::Forbidden("this account is disabled"));
        };
        tracing::info!(user_id = %user.id, session_id = %issued.session_id, "bridged session");
        let detail = json!({ "provider": identity.provider, "issuer": identity.issuer });
        let subject = subject(Some(&user.id), Some(&issued.session_id), client);
        self.audit.record(Event::Bridge, subject, detail).await;
        Ok(issued)
    }

    /// A linked user's `email_verified` follows the issuer's claim about the same address.
    async fn follow_email_claim(&self, user: User, identity: &VerifiedIdentity) -> Result<User> {
        let same_address = user.email.is_some() && user.email == identity.email;
        if !same_address || user.email_verified == identity.email_verified {
            return Ok(user);
        }
        self.store
            .set_email_verified(&user.id, identity.email_verified, self.clock.now())
            .await?;
        Ok(User {
            email_verified: identity.email_verified,
            ..user
        })
    }

    /// The user linked to (issuer, sub), created on first use.
    async fn local_user(&self, identity: &VerifiedIdentity) -> Result<User> {
        let store = &self.store;
        // Two first uses at once: one creates, the other finds it on the next pass.
        for _ in 0..3 {
            if let Some(user) = store
                .find_bridged_user(&identity.issuer, &identity.subject)
                .await?
            {
                return self.follow_email_claim(user, identity).await;
            }
            let now = self.clock.now();
            let user = User {
                id: UserId::generate(),
                email: identity
                    .email
                    .as_deref()
                    .and_then(|e| Email::parse(e).ok())
                    .map(|e| e.as_str().to_string()),
                is_guest: false,
                email_verified: identity.email_verified,
                created_at: now,
            };
            let (issuer, subject) = (&identity.issuer, &identity.subject);
            if store
                .create_bridged_user(&user, issuer, subject, &identity.provider, now)
                .await?
            {
                return Ok(store.find_user(&user.id).await?.unwrap_or(user));
            }
        }
        Err(Error::Internal(anyhow::anyhow!(
            "could not link a bridged identity"
        )))
    }
}
