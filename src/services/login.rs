//! Login: the password check, under the per-account throttle, and the session it opens only
//! if the password it proved is still the user's when the session is written.

use secrecy::SecretString;
use serde_json::json;

use super::Services;
use super::accounts::subject;
use super::sessions::Issued;
use crate::audit::Event;
use crate::domain::{ClientInfo, Email, SessionKind};
use crate::error::{Error, Result};
use crate::store::Precondition;
use crate::throttle::Verdict;

impl Services {
    #[tracing::instrument(name = "login", skip_all)]
    pub async fn login(
        &self,
        typed_email: &str,
        password: &SecretString,
        client: &ClientInfo,
    ) -> Result<Issued> {
        self.credential_attempt(client)?;
        // An unparseable email is looked up as no user at all, so it costs the same dummy hash.
        let email = Email::parse(typed_email).ok();
        let account = throttle_account(typed_email, email.as_ref());
        let address = client.limit_key_text();
        self.wait_for_throttle(&account, &address).await?;
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
        let verified = self.hasher.verify(password, hash).await? && !disabled;
        let (user_id, verified_hash) = match (user_id, verified_hash) {
            (Some(id), Some(verified_hash)) if verified => (id, verified_hash),
            (known, _) => {
                let email = email.as_ref().map(Email::as_str);
                return Err(self
                    .login_failed(
                        known.as_deref(),
                        email,
                        &account,
                        &address,
                        disabled,
                        client,
                    )
                    .await);
            }
        };
        self.throttle.succeeded(&account, &address).await?;
        let user = self
            .store
            .find_user(&user_id)
            .await?
            .ok_or(Error::InvalidCredentials)?;
        let precondition = Precondition::CurrentCredentials {
            verified_hash: &verified_hash,
        };
        let Some(issued) = self
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
        self.audit(Event::LoginSucceeded, subject, json!({})).await;
        Ok(issued)
    }

    /// Records a failed login (and a throttle it triggers); the error to answer with.
    async fn login_failed(
        &self,
        user_id: Option<&str>,
        email: Option<&str>,
        account: &str,
        address: &str,
        disabled: bool,
        client: &ClientInfo,
    ) -> Error {
        tracing::info!(disabled, "login failed");
        self.metrics.logins.with_label_values(&["failed"]).inc();
        let mut detail = json!({ "email": email });
        if disabled {
            detail["disabled"] = json!(true);
        }
        let failed = Event::LoginFailed;
        self.audit(failed, subject(user_id, None, client), detail)
            .await;
        let failure = match self
            .throttle
            .failed(account, address, self.clock.now())
            .await
        {
            Ok(failure) => failure,
            Err(error) => return error.into(),
        };
        if failure.blocked_client || failure.blocked_account {
            let detail = json!({ "email": account, "account_wide": failure.blocked_account });
            let throttled = Event::LoginThrottled;
            self.audit(throttled, subject(user_id, None, client), detail)
                .await;
        }
        Error::InvalidCredentials
    }

    /// Refuses a throttled attempt (429, before any password is checked) or makes it wait.
    async fn wait_for_throttle(&self, account: &str, address: &str) -> Result<()> {
        match self
            .throttle
            .check(account, address, self.clock.now())
            .await?
        {
            Verdict::Open => Ok(()),
            Verdict::Slowed(pause) => {
                tokio::time::sleep(pause).await;
                Ok(())
            }
            Verdict::Blocked(retry_after) => {
                self.metrics.login_throttled.inc();
                Err(Error::RateLimited(retry_after.max(1) as u64))
            }
        }
    }
}

/// The account a login attempt counts against: the normalized email, or the input as typed
/// (trimmed, lowercased) when it is not an email, so that garbage is throttled too.
fn throttle_account(typed: &str, email: Option<&Email>) -> String {
    match email {
        Some(email) => email.as_str().to_string(),
        None => typed.trim().to_lowercase().chars().take(254).collect(),
    }
}
