//! Login: the password check, through the one credential-check step (`credentials`), and the
//! session it opens only if the password it proved is still the user's when it is written.

use secrecy::SecretString;
use serde_json::json;

use super::accounts::{Accounts, subject};
use super::credentials::Admission;
use super::factors::FirstFactor;
use super::sessions::Issued;
use crate::domain::{ClientInfo, Email, SessionKind};
use crate::error::{Error, Result};
use crate::observability::audit::Event;
use crate::store::Precondition;

impl Accounts {
    #[tracing::instrument(name = "login", skip_all)]
    pub async fn login(
        &self,
        typed_email: &str,
        password: &SecretString,
        client: &ClientInfo,
    ) -> Result<Issued> {
        self.checks.attempt(client)?;
        // An unparseable email is looked up as no user at all, so it costs the same dummy hash.
        let email = Email::parse(typed_email).ok();
        let account = throttle_account(typed_email, email.as_ref());
        let Admission { slot, ticket } = self.checks.admit_check(&account, client).await?;
        let stored = match &email {
            Some(email) => self.store.find_credentials(email.as_str()).await?,
            None => None,
        };
        let (user_id, hash, disabled) = match stored {
            Some(found) => (Some(found.user_id), found.password_hash, found.disabled),
            None => (None, None, false),
        };
        let verified_hash = hash.clone();
        // A disabled account still pays for the hash, and fails exactly like a wrong password:
        // the answer must not confirm that the password was right.
        let verified = self.checks.hasher().verify_in(slot, password, hash).await? && !disabled;
        let (user_id, verified_hash) = match (user_id, verified_hash) {
            (Some(id), Some(verified_hash)) if verified => (id, verified_hash),
            (known, _) => {
                tracing::info!(disabled, "login failed");
                self.metrics.logins.with_label_values(&["failed"]).inc();
                let mut detail = json!({ "email": email.as_ref().map(Email::as_str) });
                if disabled {
                    detail["disabled"] = json!(true);
                }
                let subject = subject(known.as_deref(), None, client);
                return Err(self
                    .checks
                    .check_failed(
                        ticket,
                        Event::LoginFailed,
                        subject,
                        detail,
                        Error::InvalidCredentials,
                    )
                    .await);
            }
        };
        self.checks.check_passed(ticket).await?;
        let user = self
            .store
            .find_user(&user_id)
            .await?
            .ok_or(Error::InvalidCredentials)?;
        // Checked after the password: only its owner learns that the address is unverified.
        if !user.may_sign_in(self.require_verified_email) {
            return Err(Error::EmailNotVerified);
        }
        self.factors
            .require_second_factor(&user, FirstFactor::Password, client)
            .await?;
        let precondition = Precondition::CurrentCredentials {
            verified_hash: &verified_hash,
        };
        let Some(issued) = self
            .sessions
            .open_session(precondition, &user, SessionKind::Password, client)
            .await?
        else {
            // The password changed, or the user was disabled, while we were verifying it.
            tracing::info!(user_id = %user.id, "login raced a password change or a disable");
            return Err(Error::InvalidCredentials);
        };
        tracing::info!(user_id = %user.id, session_id = %issued.session_id, "logged in");
        self.metrics.logins.with_label_values(&["ok"]).inc();
        let subject = subject(Some(&user.id), Some(&issued.session_id), client);
        self.audit
            .record(Event::LoginSucceeded, subject, json!({}))
            .await;
        Ok(issued)
    }
}

/// The account a login attempt counts against: the normalized email, or the input as typed
/// (trimmed, lowercased) when it is not an email, so that garbage is throttled too.
pub(super) fn throttle_account(typed: &str, email: Option<&Email>) -> String {
    match email {
        Some(email) => email.as_str().to_string(),
        None => typed.trim().to_lowercase().chars().take(254).collect(),
    }
}
